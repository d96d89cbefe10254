"""SOAP envelopes of WS-Management: reading requests, writing responses and faults.

Only what a PowerShell Remoting client sends is understood (MS-WSMV shell actions, Get). Faults
carry the ``WSManFault`` detail a Windows host writes, because that is where a client such as
pypsrp reads the numeric code it branches on (``0x80338029`` for an operation timeout, ...).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import attrs

__all__ = [
    "ACTIONS",
    "NS",
    "Request",
    "WSManFault",
    "envelope",
    "fault_envelope",
    "parse_request",
]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "xml": "http://www.w3.org/XML/1998/namespace",
}

_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"

#: Request action URI -> short name used by the server's dispatch table.
ACTIONS = {
    _TRANSFER + "Create": "Create",
    _TRANSFER + "Delete": "Delete",
    _TRANSFER + "Get": "Get",
    _SHELL + "Command": "Command",
    _SHELL + "Send": "Send",
    _SHELL + "Receive": "Receive",
    _SHELL + "Signal": "Signal",
}

#: Short name -> response action URI.
RESPONSE_ACTIONS = {
    "Create": _TRANSFER + "CreateResponse",
    "Delete": _TRANSFER + "DeleteResponse",
    "Get": _TRANSFER + "GetResponse",
    "Command": _SHELL + "CommandResponse",
    "Send": _SHELL + "SendResponse",
    "Receive": _SHELL + "ReceiveResponse",
    "Signal": _SHELL + "SignalResponse",
}

_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
_ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")

for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)


class WSManFault(Exception):
    """A fault the server answers instead of a response, as Windows words and numbers it.

    ``code`` is the Win32/WinRM error number a client sees (``WSManFaultError.code`` in pypsrp);
    ``subcode`` the WS-Management subcode (``w:TimedOut``...); ``http_status`` is 500 as on
    Windows for every SOAP fault.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        *,
        subcode: str = "w:InternalError",
        sender: bool = False,
        http_status: int = 500,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode
        self.sender = sender
        self.http_status = http_status

    def __repr__(self) -> str:
        return f"WSManFault({self.code:#x}, {self.reason!r})"


@attrs.frozen
class Request:
    """What the server needs from a request envelope."""

    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    options: dict[str, str]
    max_envelope_size: int
    operation_timeout: float
    body: ET.Element | None


def _duration_seconds(text: str | None, default: float) -> float:
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    minutes, seconds = match.groups()
    return float(minutes or 0) * 60 + float(seconds or 0)


def parse_request(data: bytes) -> Request:
    """Read a request envelope; raise :class:`WSManFault` if it is not one we understand."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WSManFault(
            2150858817,
            f"The request is not well-formed XML: {exc}",
            subcode="w:SchemaValidationError",
        ) from None
    header = root.find("s:Header", NS)
    if header is None:
        raise WSManFault(2150858817, "The request has no SOAP header.", sender=True)
    action_uri = (header.findtext("wsa:Action", "", NS) or "").strip()
    action = ACTIONS.get(action_uri)
    if action is None:
        raise WSManFault(
            2150858810,
            f"The WS-Management service does not support the action {action_uri!r}.",
            subcode="wsa:ActionNotSupported",
            sender=True,
        )
    selectors = {
        sel.get("Name", ""): (sel.text or "")
        for sel in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    options = {
        opt.get("Name", ""): (opt.text or "")
        for opt in header.findall("wsman:OptionSet/wsman:Option", NS)
    }
    try:
        max_envelope = int(header.findtext("wsman:MaxEnvelopeSize", "153600", NS) or 153600)
    except ValueError:
        max_envelope = 153600
    body = root.find("s:Body", NS)
    return Request(
        action=action,
        message_id=(header.findtext("wsa:MessageID", "", NS) or "").strip(),
        resource_uri=(header.findtext("wsman:ResourceURI", "", NS) or "").strip(),
        selectors=selectors,
        options=options,
        max_envelope_size=max_envelope,
        operation_timeout=_duration_seconds(
            header.findtext("wsman:OperationTimeout", None, NS), 60.0
        ),
        body=body[0] if body is not None and len(body) else None,
    )


def _header(action_uri: str, relates_to: str) -> ET.Element:
    s, wsa = NS["s"], NS["wsa"]
    header = ET.Element(f"{{{s}}}Header")
    ET.SubElement(header, f"{{{wsa}}}Action").text = action_uri
    ET.SubElement(header, f"{{{wsa}}}MessageID").text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, f"{{{wsa}}}To").text = _ANONYMOUS
    ET.SubElement(header, f"{{{wsa}}}RelatesTo").text = relates_to
    return header


def envelope(action: str, relates_to: str, body: Sequence[ET.Element] = ()) -> bytes:
    """A response envelope for the short ``action`` name, answering ``relates_to``."""
    s = NS["s"]
    root = ET.Element(f"{{{s}}}Envelope")
    root.append(_header(RESPONSE_ACTIONS[action], relates_to))
    body_element = ET.SubElement(root, f"{{{s}}}Body")
    body_element.extend(body)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return data


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    """The SOAP fault envelope Windows answers, with the ``WSManFault`` detail."""
    s, mf = NS["s"], NS["wsmanfault"]
    root = ET.Element(f"{{{s}}}Envelope")
    root.append(_header(_FAULT_ACTION, relates_to))
    body = ET.SubElement(root, f"{{{s}}}Body")
    fault_el = ET.SubElement(body, f"{{{s}}}Fault")
    code = ET.SubElement(fault_el, f"{{{s}}}Code")
    ET.SubElement(code, f"{{{s}}}Value").text = "s:Sender" if fault.sender else "s:Receiver"
    sub = ET.SubElement(code, f"{{{s}}}Subcode")
    ET.SubElement(sub, f"{{{s}}}Value").text = fault.subcode
    reason = ET.SubElement(fault_el, f"{{{s}}}Reason")
    text = ET.SubElement(reason, f"{{{s}}}Text")
    text.set(f"{{{NS['xml']}}}lang", "en-US")
    text.text = fault.reason
    detail = ET.SubElement(fault_el, f"{{{s}}}Detail")
    wsman_fault = ET.SubElement(
        detail, f"{{{mf}}}WSManFault", Code=str(fault.code), Machine=machine
    )
    ET.SubElement(wsman_fault, f"{{{mf}}}Message").text = fault.reason
    data: bytes = ET.tostring(root, encoding="utf-8")
    return data


def element(tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """``element("rsp:Stream", data, Name="stdout")``: an element in one of :data:`NS`."""
    prefix, _, local = tag.partition(":")
    el = ET.Element(f"{{{NS[prefix]}}}{local}", attrib)
    el.text = text
    return el


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append :func:`element` to ``parent`` and return it."""
    child = element(tag, text, **attrib)
    parent.append(child)
    return child
