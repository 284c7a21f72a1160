"""The scenarios of test_quarantine.py again, every file read in a worker process.

They cover `--quarantine` (bad lines set aside, the rest stored, rejects listed); here `dpa.offload` reads each file in a forked worker, so they prove
that the worker's records, errors and carried state (the cursor, the rejects, the zone
evidence, the layout) make the command do exactly what reading in line does.
"""

from tests.dpa.offloaded import always_offload  # noqa: F401 (an autouse fixture)
from tests.dpa.test_quarantine import *  # noqa: F403
from tests.dpa.test_quarantine import _frozen  # noqa: F401 (autouse: a star leaves it out)
