"""Every error dpa raises on purpose, and the exit code the CLI gives it.

The hierarchy::

    DpaError                       base; never raised itself
    ├── InputError        (2)      the input is wrong: fix it and run again
    │   ├── NotInitialised         DPA_HOME or its database has not been set up by `dpa init`
    │   ├── RegisterInvalid        a register document fails its schema or semantic checks
    │   ├── FileLineError          a line of an input file cannot be read (FILE:LINE: reason)
    │   └── UnknownContractPolicy  a customer names a contract policy the register lacks
    ├── PolicyRefusal     (3)      the input is well-formed but the register or the law forbids it
    │   ├── UnknownCustomer        no customer has that id
    │   ├── CustomerExists         a customer with that id already exists
    │   ├── AlreadyTerminated      the contract has already been terminated
    │   ├── WindowClosed           the two-month window after the contract has ended
    │   ├── HoldProblem            no such legal hold, or it was already released
    │   └── RequestProblem         no such subject request, or its status forbids the step
    ├── KeyProblem        (4)      the master key is missing, wrong or exposed
    │   ├── MasterKeyMissing       no DPA_MASTER_KEY and no key file
    │   ├── MasterKeyMismatch      the key given is not the key this database was set up with
    │   └── KeyFileInsecure        the key file can be read by other users
    └── IntegrityFailure  (1)      a check found something wrong (ledger chain, checkpoint)

The engines add a few leaves of their own, next to the code that raises them:
`retention.scheduler.SchedulerAlreadyRunning` (3), `exports.delivery.UnknownExport` and
`ExportDeleted` (3), `PackageCorrupt` (1) and `SecretProblem` (4),
`exports.disclosure.DisclosureProblem` (3); `dpa.offload.WorkerLost` (1) when a reading worker
process dies without a word.

Messages are for a person: they name ids, files and line numbers, never personal data
(no phone number, name or e-mail address ever appears in a message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AlreadyTerminated",
    "CustomerExists",
    "DpaError",
    "FileLineError",
    "HoldProblem",
    "InputError",
    "IntegrityFailure",
    "KeyFileInsecure",
    "KeyProblem",
    "MasterKeyMismatch",
    "MasterKeyMissing",
    "NotInitialised",
    "PolicyRefusal",
    "Problem",
    "RegisterInvalid",
    "RequestProblem",
    "UnknownContractPolicy",
    "UnknownCustomer",
    "WindowClosed",
]


class DpaError(Exception):
    """Base of every error dpa raises on purpose; carries the CLI exit code."""

    exit_code: int = 2


class InputError(DpaError):
    """The input is wrong (usage, document, file): exit code 2."""

    exit_code = 2


class NotInitialised(InputError):
    """Raised when DPA_HOME or its database has not been created by `dpa init`."""


class UnknownContractPolicy(InputError):
    """Raised when a customer is given a contract policy the register does not define."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a document: where (a JSON path such as `activities[2].retention`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RegisterInvalid(InputError):
    """Raised when a register fails its JSON Schema or its semantic checks; lists every problem."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: invalid register, {count} {noun}:\n{lines}")


class FileLineError(InputError):
    """Raised when a line of an input file cannot be used; the message is `FILE:LINE: reason`."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        super().__init__(f"{file}:{line}: {reason}")

    def __reduce__(self) -> tuple[type[FileLineError], tuple[str, int, str]]:
        # Raised in a reading worker (`dpa.offload`), it crosses to the storing process pickled.
        return (FileLineError, (self.file, self.line, self.reason))


class PolicyRefusal(DpaError):
    """The request is well-formed but the register, a contract or a hold forbids it: exit code 3."""

    exit_code = 3


class UnknownCustomer(PolicyRefusal):
    """Raised when no customer has the given id."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"unknown customer {customer_id!r}")


class CustomerExists(PolicyRefusal):
    """Raised when adding a customer whose id is already taken."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"customer {customer_id!r} already exists")


class AlreadyTerminated(PolicyRefusal):
    """Raised when terminating a contract that has already been terminated."""


class WindowClosed(PolicyRefusal):
    """Raised when an action needs the contract or its window and the window has closed."""


class HoldProblem(PolicyRefusal):
    """Raised when a legal hold does not exist or has already been released."""


class RequestProblem(PolicyRefusal):
    """Raised when a data subject's request does not exist or its status forbids the step."""


class KeyProblem(DpaError):
    """The master key is missing, wrong or exposed: exit code 4. Nothing was changed."""

    exit_code = 4


class MasterKeyMissing(KeyProblem):
    """Raised when neither DPA_MASTER_KEY nor the key file provides a master key."""


class MasterKeyMismatch(KeyProblem):
    """Raised when the master key's fingerprint differs from the one the database was set up with."""


class KeyFileInsecure(KeyProblem):
    """Raised when the key file is readable or writable by anyone but its owner."""


class IntegrityFailure(DpaError):
    """A check found something wrong, such as a broken ledger chain: exit code 1."""

    exit_code = 1
