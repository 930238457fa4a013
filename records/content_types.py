"""The real content type of a document, detected from its bytes (rule D, A10), never from its name.

libmagic (through python-magic) reads the first bytes; its answer is mapped to one normalised type string,
or ``None`` when the format is not one the record accepts. A file called ``.pdf`` whose bytes are an
executable or an HTML page is therefore refused. CDA R2 documents from practitioners' software are
recognised by their root element (``ClinicalDocument`` in ``urn:hl7-org:v3``), read with a streaming parser
that refuses DTDs (no entity expansion, no external fetch) and stops at the root.
"""

import xml.parsers.expat

import magic
from django.utils.translation import gettext_lazy as _

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
TIFF = "image/tiff"
RTF = "text/rtf"
TEXT = "text/plain"
# CDA R2: "text/xml" is the mimeType IHE XDS (and so the DMP) registers for CDA documents. Only XML whose
# root is a CDA ClinicalDocument is given this type; any other XML is refused.
CDA_XML = "text/xml"

CDA_NAMESPACE = "urn:hl7-org:v3"

# What libmagic says -> our normalised type. Absent = not accepted.
_FROM_MAGIC = {
    "application/pdf": PDF,
    "image/jpeg": JPEG,
    "image/png": PNG,
    "image/tiff": TIFF,
    "text/rtf": RTF,
    "application/rtf": RTF,
    "text/plain": TEXT,
    "text/csv": TEXT,  # a plain-text note with commas on every line is still a TXT file for the patient
}
_XML_MAGIC = {"text/xml", "application/xml"}

LABELS = {
    PDF: _("PDF"),
    JPEG: _("JPEG"),
    PNG: _("PNG"),
    TIFF: _("TIFF"),
    RTF: _("RTF"),
    TEXT: _("texte (TXT)"),
    CDA_XML: _("CDA R2 (XML)"),
}


class _RootFound(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class _NotPlainXml(Exception):
    pass


def _xml_root(head: bytes) -> str | None:
    """``"namespace localname"`` of the root element of the XML in ``head``, or None if there is none."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def start(name, attributes):
        raise _RootFound(name)

    def refuse(*args):
        raise _NotPlainXml

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    try:
        parser.Parse(head, False)
    except _RootFound as found:
        return found.name
    except (_NotPlainXml, xml.parsers.expat.ExpatError):
        return None
    return None


def is_cda(head: bytes) -> bool:
    return _xml_root(head) == f"{CDA_NAMESPACE} ClinicalDocument"


def detect_content_type(head: bytes) -> str | None:
    """The normalised content type of a file whose first bytes are ``head``, or None if not accepted."""
    if not head:
        return None
    detected = magic.from_buffer(head, mime=True)
    if detected in _XML_MAGIC:
        return CDA_XML if is_cda(head) else None
    if detected == "text/plain" and head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<" and is_cda(head):
        return CDA_XML  # libmagic calls XML without an <?xml?> declaration plain text
    return _FROM_MAGIC.get(detected)


def describe(types) -> str:
    """French list of the formats in ``types``, for error messages ("PDF, JPEG, PNG")."""
    return ", ".join(str(LABELS[t]) for t in sorted(types, key=list(LABELS).index) if t in LABELS)
