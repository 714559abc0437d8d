"""The WebAssembly apps' exception tree: refusals of a bundle (format, signature, manifest,
module) before anything is stored, and failures of a call (trap, timeout, memory) that the
station contains. Every error says what was wrong in words an operator can act on."""

from __future__ import annotations


class AppError(Exception):
    """Root of every WebAssembly app failure."""


# ---- refusals at upload: nothing is stored


class AppRefused(AppError):
    """The bundle, its signature, its manifest or its module is not acceptable."""


class InvalidBundle(AppRefused):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not an app bundle: {reason}")
        self.reason = reason


class InvalidManifest(AppRefused):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"manifest {field}: {reason}")
        self.field, self.reason = field, reason


class LimitTooHigh(AppRefused):
    def __init__(self, limit: str, asked: int, allowed: int) -> None:
        super().__init__(f"manifest limits.{limit} = {asked} is above the station's maximum of {allowed}")
        self.limit, self.asked, self.allowed = limit, asked, allowed


class UnsignedApp(AppRefused):
    def __init__(self) -> None:
        super().__init__("the app is not signed and this station only runs signed apps ([wasm] allow_unsigned)")


class UnknownSigningKey(AppRefused):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"signed with key {key_id}, which this station does not trust (firefly app keys add)")
        self.key_id = key_id


class BadSignature(AppRefused):
    def __init__(self) -> None:
        super().__init__("the signature does not verify: the manifest was changed after signing, or forged")


class ModuleHashMismatch(AppRefused):
    def __init__(self, declared: str, actual: str) -> None:
        super().__init__(f"app.wasm has sha256 {actual[:16]}..., the manifest declares {declared[:16]}...")
        self.declared, self.actual = declared, actual


class InvalidModule(AppRefused):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not a valid WebAssembly module: {reason}")
        self.reason = reason


class UnknownImport(AppRefused):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"the module imports {module}.{name}, which the host API does not provide")
        self.module, self.name = module, name


class CapabilityNotDeclared(AppRefused):
    def __init__(self, function: str, capability: str) -> None:
        super().__init__(f"the module imports firefly.{function}, which needs capability {capability!r}"
                         " that the manifest does not declare")
        self.function, self.capability = function, capability


class MissingExport(AppRefused):
    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"the module does not export {name!r} ({expected})")
        self.name, self.expected = name, expected


class BadExportSignature(AppRefused):
    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(f"export {name!r} has type {actual}, expected {expected}")
        self.name, self.expected, self.actual = name, expected, actual


class IncompatibleApp(AppRefused):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not compatible with this station: {reason}")
        self.reason = reason


# ---- keys and lookups


class AppKeyError(AppError):
    """A trusted-key operation failed."""


class InvalidKey(AppKeyError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not an Ed25519 public key: {reason}")
        self.reason = reason


class KeyNotFound(AppKeyError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no trusted key with id {key_id}")
        self.key_id = key_id


class AppNotFound(AppError):
    def __init__(self, name: str, version: str | None = None) -> None:
        super().__init__(f"no app {name}" + (f" version {version}" if version else ""))
        self.name, self.version = name, version


class AppStateError(AppError):
    """The operation does not fit the app's state (start a failed version, roll back without an older one)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"app {name}: {reason}")
        self.name, self.reason = name, reason


# ---- failures of a call: contained, the station and other apps carry on


class AppCallFailed(AppError):
    def __init__(self, app: str, entry_point: str, reason: str) -> None:
        super().__init__(f"app {app}: {entry_point} failed: {reason}")
        self.app, self.entry_point, self.reason = app, entry_point, reason


class AppTrap(AppCallFailed):
    """The module trapped (unreachable, out-of-bounds access, division by zero, a host call refused)."""


class AppTimeout(AppCallFailed):
    """Fuel ran out or the wall-clock deadline passed: an infinite loop ends here."""


class AppMemoryExceeded(AppCallFailed):
    """The module tried to grow its memory beyond its limit."""


class AppOutputInvalid(AppCallFailed):
    """The entry point returned a pointer/length outside its memory, or bytes that are not JSON."""


class CapabilityDenied(AppCallFailed):
    """A host function the app was not granted (traps the call)."""


class AppBusy(AppCallFailed):
    """More calls waiting than the station allows: try later."""
