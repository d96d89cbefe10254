"""``PypsrpShell``: the :class:`Shell` tests use to reach a simulated host through pypsrp.

It is an ordinary pypsrp client (``WSMan`` + one reused ``RunspacePool``): every pipeline is built
with ``add_cmdlet``/``add_parameter``/``add_argument``, never ``add_script``. What comes back is
converted the way a PowerShell client deserializes it: objects become :class:`OutputObject` with
``Deserialized.``-prefixed type names, enums :class:`EnumValue`, error records
:class:`CmdletError` (fully qualified error id, category name, message, target, exception type).

Values sent (parameters, pipeline input) are written as CLIXML by this module rather than by
pypsrp's serializer, which has no ``DateTime`` and sends floats as ``Single``: ``datetime`` as
``DT``, ``float`` as ``Db``, :class:`EnumValue` as an enum, :class:`OutputObject` /
:class:`InputObject` as the object a PowerShell client sends back (original type names).
"""

from __future__ import annotations

import base64
import datetime
import itertools
import os
import re
import tempfile
import threading
import types
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, cast

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from vmfailover.errors import ValidationError

from ._objects import Call, CmdletError, EnumValue, InputObject, OutputObject, ShellResult

if TYPE_CHECKING:
    from .host import HyperVHost

__all__ = ["PypsrpShell", "from_clixml", "to_clixml"]

_DESERIALIZED = "Deserialized."
_ERROR_CATEGORIES = (  # System.Management.Automation.ErrorCategory, by value
    "NotSpecified",
    "OpenError",
    "CloseError",
    "DeviceError",
    "DeadlockDetected",
    "InvalidArgument",
    "InvalidData",
    "InvalidOperation",
    "InvalidResult",
    "InvalidType",
    "MetadataError",
    "NotImplemented",
    "NotInstalled",
    "ObjectNotFound",
    "OperationStopped",
    "OperationTimeout",
    "SyntaxError",
    "ParserError",
    "PermissionDenied",
    "ResourceBusy",
    "ResourceExists",
    "ResourceUnavailable",
    "ReadError",
    "WriteError",
    "FromStdErr",
    "SecurityError",
    "ProtocolError",
    "ConnectionError",
    "AuthenticationError",
    "LimitsExceeded",
    "QuotaExceeded",
    "NotEnabled",
)
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_ref_ids = itertools.count(1_000_000)
_ref_lock = threading.Lock()


def _ref() -> str:
    # Far above the RefIds pypsrp numbers its own objects with in the same message.
    with _ref_lock:
        return str(next(_ref_ids))


# -- Python -> CLIXML (what a PowerShell client sends) -------------------------------------------


def _encode_string(value: str) -> str:
    # As PowerShell does: control characters (CR included, which XML would normalize away),
    # surrogates and a literal "_x" escape sequence are written as _xHHHH_.
    def escape(char: str) -> str:
        code = ord(char)
        if code < 0x20 or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            return f"_x{code:04X}_"
        return char

    value = _ESCAPE.sub(lambda m: "_x005F_" + m.group(0)[1:], value)
    return "".join(escape(c) for c in value)


def _primitive(tag: str, text: str) -> ET.Element:
    element = ET.Element(tag)
    element.text = text
    return element


def _object(type_names: list[str], to_string: str | None = None) -> ET.Element:
    obj = ET.Element("Obj", RefId=_ref())
    tn = ET.SubElement(obj, "TN", RefId=_ref())
    for name in type_names:
        ET.SubElement(tn, "T").text = name
    if to_string is not None:
        ET.SubElement(obj, "ToString").text = _encode_string(to_string)
    return obj


def to_clixml(value: Any) -> ET.Element:
    """The CLIXML element a PowerShell client sends for ``value``."""
    if value is None:
        return ET.Element("Nil")
    if isinstance(value, bool):
        return _primitive("B", "true" if value else "false")
    if isinstance(value, EnumValue):
        obj = _object(
            [value.type_name, "System.Enum", "System.ValueType", "System.Object"], value.name
        )
        obj.insert(0, _primitive("I32", str(value.value)))
        return obj
    if isinstance(value, int):
        return _primitive("I32" if -(2**31) <= value < 2**31 else "I64", str(value))
    if isinstance(value, float):
        return _primitive("Db", repr(value).upper())
    if isinstance(value, str):
        return _primitive("S", _encode_string(value))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValidationError.of(
                "pipeline value",
                f"datetime {value!r} has no time zone",
                "use an aware datetime (UTC)",
            )
        return _primitive("DT", value.isoformat())
    if isinstance(value, uuid.UUID):
        return _primitive("G", str(value))
    if isinstance(value, bytes):
        return _primitive("BA", base64.b64encode(value).decode("ascii"))
    if isinstance(value, OutputObject | InputObject):
        names = [
            n[len(_DESERIALIZED) :] if n.startswith(_DESERIALIZED) else n for n in value.type_names
        ]
        obj = _object(
            names or ["System.Management.Automation.PSCustomObject", "System.Object"],
            value.to_string,
        )
        if value.properties:
            props = ET.SubElement(obj, "Props")
            for name, item in value.properties.items():
                element = to_clixml(item)
                element.set("N", _encode_string(str(name)))
                props.append(element)
        return obj
    if isinstance(value, list | tuple):
        obj = _object(["System.Object[]", "System.Array", "System.Object"])
        lst = ET.SubElement(obj, "LST")
        lst.extend(to_clixml(item) for item in value)
        return obj
    if isinstance(value, Mapping):
        obj = _object(["System.Collections.Hashtable", "System.Object"])
        dct = ET.SubElement(obj, "DCT")
        for key, item in value.items():
            entry = ET.SubElement(dct, "En")
            key_element = to_clixml(key)
            key_element.set("N", "Key")
            item_element = to_clixml(item)
            item_element.set("N", "Value")
            entry.extend([key_element, item_element])
        return obj
    raise ValidationError.of(
        "pipeline value",
        f"{type(value).__name__} value {value!r} cannot be sent",
        "send str, int, bool, float, None, datetime, UUID, lists, dicts, EnumValue or objects "
        "received earlier",
    )


# -- CLIXML -> Python (what a PowerShell client deserializes) ------------------------------------


def _decode_string(text: str | None) -> str:
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text or "")
    # .NET strings are UTF-16: a character beyond the BMP arrives as two escaped surrogates.
    return decoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _datetime(text: str) -> datetime.datetime:
    text = text.strip()
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if match is None:
        return datetime.datetime.fromisoformat(text)
    base, fraction, zone = match.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.datetime.fromisoformat(f"{base}.{micro}{zone}")


_PRIMITIVES: dict[str, Any] = {
    "S": _decode_string,
    "C": lambda t: chr(int(t)),
    "B": lambda t: t.strip().lower() == "true",
    "DT": _datetime,
    "TS": str,
    "By": int,
    "SB": int,
    "U16": int,
    "I16": int,
    "U32": int,
    "I32": int,
    "U64": int,
    "I64": int,
    "Sg": float,
    "Db": float,
    "D": float,
    "G": uuid.UUID,
    "URI": _decode_string,
    "Version": str,
    "XD": _decode_string,
    "SBK": _decode_string,
    "SS": str,
}


class _Reader:
    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.type_names: dict[str, list[str]] = {}

    def read(self, element: ET.Element) -> Any:
        tag = element.tag
        if tag == "Nil":
            return None
        if tag == "Ref":
            return self.objects.get(element.get("RefId", ""))
        if tag == "BA":
            return base64.b64decode(element.text or "")
        if tag in _PRIMITIVES:
            return _PRIMITIVES[tag](element.text or "")
        if tag == "Obj":
            value = self._read_object(element)
            self.objects[element.get("RefId", "")] = value
            return value
        return _decode_string(element.text)

    def _read_object(self, element: ET.Element) -> Any:
        names: list[str] = []
        to_string: str | None = None
        properties: dict[str, Any] = {}
        primitive: Any = None
        has_primitive = False
        container: Any = None
        for child in element:
            if child.tag == "TN":
                names = [_decode_string(t.text) for t in child]
                self.type_names[child.get("RefId", "")] = names
            elif child.tag == "TNRef":
                names = self.type_names.get(child.get("RefId", ""), [])
            elif child.tag == "ToString":
                to_string = _decode_string(child.text)
            elif child.tag in ("Props", "MS"):
                for prop in child:
                    properties[_decode_string(prop.get("N"))] = self.read(prop)
            elif child.tag in ("LST", "IE", "STK", "QUE"):
                container = [self.read(item) for item in child]
            elif child.tag == "DCT":
                container = {}
                for entry in child:
                    key = value = None
                    for part in entry:
                        if part.get("N") == "Key":
                            key = self.read(part)
                        elif part.get("N") == "Value":
                            value = self.read(part)
                    container[key] = value
            else:
                primitive = self.read(child)
                has_primitive = True
        if "System.Enum" in names and has_primitive:
            return EnumValue(names[0], to_string or str(primitive), int(primitive))
        if container is not None:
            return container
        if has_primitive and not properties:
            return primitive
        prefixed = tuple(n if n.startswith(_DESERIALIZED) else _DESERIALIZED + n for n in names)
        return OutputObject(prefixed, properties, to_string or "")


def from_clixml(xml: str | ET.Element) -> Any:
    """A CLIXML value as a PowerShell client deserializes it (see the module docstring)."""
    element = ET.fromstring(xml) if isinstance(xml, str) else xml
    return _Reader().read(element)


def _from_pypsrp(value: Any) -> Any:
    xml = getattr(value, "_xml", None)
    if isinstance(xml, str) and xml:
        return from_clixml(xml)
    if isinstance(value, list):
        return [_from_pypsrp(item) for item in value]
    if isinstance(value, dict):
        return {_from_pypsrp(key): _from_pypsrp(item) for key, item in value.items()}
    return value


def _category_name(number: Any) -> str:
    try:
        return _ERROR_CATEGORIES[int(number)]
    except (TypeError, ValueError, IndexError):
        return "NotSpecified"


def _error(record: Any, terminating: bool) -> CmdletError:
    exception = getattr(record, "exception", None)
    message = None
    exception_type = "System.Exception"
    if exception is not None:
        properties = {
            **getattr(exception, "extended_properties", {}),
            **getattr(exception, "adapted_properties", {}),
        }
        message = properties.get("Message")
        types_ = getattr(exception, "types", None) or []
        if types_:
            exception_type = str(types_[0])
    return CmdletError(
        str(getattr(record, "fq_error", "") or ""),
        str(message if message is not None else getattr(record, "message", "") or ""),
        category=_category_name(getattr(record, "category", 0)),
        target=_from_pypsrp(getattr(record, "target_object", None)),
        exception_type=exception_type,
        terminating=terminating,
    )


class PypsrpShell:
    """A :class:`Shell` over pypsrp to a :class:`HyperVHost` (one reused runspace pool).

    Basic auth on http goes unencrypted (``encryption="never"``); NTLM/Negotiate on http uses
    WinRM message encryption; https pins the host's generated certificate. Transport failures
    (``WSManFaultError``, ``AuthenticationError``, ``requests`` connection errors) propagate:
    they are what a test of the wire asserts on.
    """

    def __init__(
        self,
        host: HyperVHost,
        *,
        operation_timeout: int = 5,
        read_timeout: int = 15,
        max_envelope_size: int = 153600,
        open_pool: bool = True,
    ) -> None:
        self._cert_file: str | None = None
        cert_validation: bool | str = True
        if host.tls:
            pem = host.certificate_pem
            if pem is None:
                raise ValidationError.of(
                    f"host {host.name!r}", "has no certificate", "start the host first"
                )
            handle, self._cert_file = tempfile.mkstemp(prefix="vmfailover-hv-", suffix=".pem")
            with os.fdopen(handle, "w", encoding="ascii") as file:
                file.write(pem)
            cert_validation = self._cert_file
        self.wsman = WSMan(
            "127.0.0.1",
            port=host.port,
            ssl=host.tls,
            auth=host.auth,
            username=host.username,
            password=host.password,
            # pypsrp annotates a bool but takes a CA file path too (requests' ``verify``).
            cert_validation=cast(Any, cert_validation),
            encryption="never" if host.auth == "basic" and not host.tls else "auto",
            operation_timeout=operation_timeout,
            read_timeout=read_timeout,
            connection_timeout=5,
            max_envelope_size=max_envelope_size,
            no_proxy=True,
        )
        self.pool = RunspacePool(self.wsman)
        if open_pool:
            self.pool.open()

    def run(self, *pipeline: Call) -> ShellResult:
        """Run one pipeline; see :class:`Shell`."""
        return self.run_with_input(pipeline)

    def run_with_input(
        self, pipeline: tuple[Call, ...], input_objects: list[Any] | None = None
    ) -> ShellResult:
        """Run ``pipeline`` with ``input_objects`` as its pipeline input."""
        if not pipeline:
            raise ValidationError.of("pipeline", "is empty", "give at least one cmd(...)")
        powershell = PowerShell(self.pool)
        for call in pipeline:
            powershell.add_cmdlet(call.command)
            for name, value in call.arguments:
                wire = None if value is None else to_clixml(value)
                if name is None:
                    powershell.add_argument(wire)
                else:
                    powershell.add_parameter(name, wire)
        wire_input = None if input_objects is None else [to_clixml(item) for item in input_objects]
        output = powershell.invoke(cast(Any, wire_input))  # pypsrp takes a list of elements
        failed = powershell.state == PSInvocationState.FAILED
        records = list(powershell.streams.error)
        errors = tuple(
            _error(record, terminating=failed and index == len(records) - 1)
            for index, record in enumerate(records)
        )
        result = ShellResult(tuple(_from_pypsrp(item) for item in output), errors)
        powershell.close()
        return result

    def close(self) -> None:
        """Close the runspace pool and the connection; idempotent."""
        try:
            self.pool.close()
        finally:
            self.wsman.close()
            if self._cert_file is not None:
                os.unlink(self._cert_file)
                self._cert_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()
