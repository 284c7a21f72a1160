"""The scenarios of test_ingest_time_cli.py again, every file read in a worker process.

They cover the time checks (zone evidence, future and pre-contract calls, --strict-time); here `dpa.offload` reads each file in a forked worker, so they prove
that the worker's records, errors and carried state (the cursor, the rejects, the zone
evidence, the layout) make the command do exactly what reading in line does.
"""

from tests.dpa.offloaded import always_offload  # noqa: F401 (an autouse fixture)
from tests.dpa.test_ingest_time_cli import *  # noqa: F403
