"""Render a document's pages to images in a separate, limited process: the preview's sandbox.

A hostile PDF or image (a decompression bomb, a page a kilometre wide, a file that loops the parser) must not
take the web worker with it. ``render`` starts this module as a child process (``python page_render.py``) with the
document's bytes on its standard input; the child first caps its own memory, CPU time and output size
(``resource.setrlimit``), then answers on its standard output, and the parent waits at most ``timeout`` seconds
before killing it. The child imports only the standard library, pypdfium2 and Pillow (no Django, no settings): it
sees the bytes of one document and nothing else.

Two requests: ``info`` (how many pages) and ``page`` (one page as an image). PDF pages are drawn by PDFium
(pypdfium2) and encoded as PNG; JPEG, PNG and TIFF images are decoded by Pillow and encoded again from their pixels
alone, so that no metadata (EXIF, GPS position, ICC or text chunks) leaves the server.
"""

from __future__ import annotations

import io
import json
import math
import subprocess  # noqa: S404 -- the child is this very file, started with a fixed argument list
import sys
from dataclasses import dataclass
from pathlib import Path

PDF = "application/pdf"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/tiff"})
RENDERABLE = frozenset({PDF}) | IMAGE_TYPES

# Error codes the child writes on its standard error; the parent maps them to the reader's words.
ENCRYPTED = "encrypted"
UNREADABLE = "unreadable"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"
NO_SUCH_PAGE = "no_such_page"


@dataclass(frozen=True)
class Limits:
    """What one preview may cost.

    ``width`` is the width pages are drawn at (1240 px: A4 at 150 dpi); a page is scaled down further so that it
    never exceeds ``max_pixels``; an image with more than ``max_source_pixels`` is refused before being decoded.
    """

    width: int = 1240
    max_pixels: int = 1240 * 1754 * 2
    max_source_pixels: int = 50_000_000
    timeout: float = 10.0
    memory_bytes: int = 1024 * 1024 * 1024
    cpu_seconds: int = 10
    max_output_bytes: int = 32 * 1024 * 1024


class RenderError(Exception):
    """The document cannot be previewed; ``code`` says why (one of the error codes above)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class PageImage:
    content: bytes
    content_type: str
    width: int
    height: int


def _run(request: list[str], body: bytes, limits: Limits) -> bytes:
    command = [sys.executable, "-E", "-s", str(Path(__file__).resolve()), *request]
    command += [str(limits.width), str(limits.max_pixels), str(limits.max_source_pixels)]
    command += [str(limits.memory_bytes), str(limits.cpu_seconds), str(limits.max_output_bytes)]
    try:
        done = subprocess.run(  # noqa: S603 -- fixed argument list, no shell
            command, input=body, capture_output=True, timeout=limits.timeout, check=False, env={}
        )
    except subprocess.TimeoutExpired:
        raise RenderError(TIMEOUT) from None
    if done.returncode != 0:
        code = done.stderr.decode("ascii", "replace").strip().rsplit("\n", 1)[-1]
        raise RenderError(code if code in {ENCRYPTED, UNREADABLE, TOO_LARGE, NO_SUCH_PAGE} else UNREADABLE)
    return done.stdout


def page_count(body: bytes, content_type: str, limits: Limits = Limits()) -> int:  # noqa: B008 -- frozen
    """How many pages (PDF) or frames (TIFF; 1 for JPEG and PNG) the document has."""
    return int(json.loads(_run(["info", content_type], body, limits))["pages"])


def render_page(body: bytes, content_type: str, number: int, limits: Limits = Limits()) -> PageImage:  # noqa: B008
    """Page ``number`` (from 1) as an image: PNG, or JPEG for a JPEG photo."""
    out = _run(["page", content_type, str(number)], body, limits)
    header, _, content = out.partition(b"\n")
    meta = json.loads(header)
    return PageImage(content=content, content_type=meta["type"], width=meta["width"], height=meta["height"])


# --- The child ---------------------------------------------------------------------------------------------------


def _limit_self(memory_bytes: int, cpu_seconds: int, max_output_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_output_bytes, max_output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))


def _scale(width: float, height: float, target_width: int, max_pixels: int) -> float:
    scale = target_width / width
    if width * height * scale * scale > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
    return scale


def _pdf(body: bytes):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(body)
    except pdfium.PdfiumError as exc:
        # PDFium reports a missing or wrong password with its own error code: an encrypted document.
        raise RenderError(ENCRYPTED if "password" in str(exc).lower() else UNREADABLE) from None


def _pdf_page(body: bytes, number: int, width: int, max_pixels: int) -> tuple[object, str]:
    document = _pdf(body)
    if not 1 <= number <= len(document):
        raise RenderError(NO_SUCH_PAGE)
    page = document[number - 1]
    page_width, page_height = page.get_size()
    if page_width <= 0 or page_height <= 0:
        raise RenderError(UNREADABLE)
    bitmap = page.render(scale=_scale(page_width, page_height, width, max_pixels), fill_color=(255, 255, 255, 255))
    return bitmap.to_pil().convert("RGB"), "image/png"


def _image(body: bytes, max_source_pixels: int):
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_source_pixels  # bigger: DecompressionBombError before any pixel is decoded
    try:
        image = Image.open(io.BytesIO(body))
        image.size  # noqa: B018 -- parse the header now
    except Image.DecompressionBombError:
        raise RenderError(TOO_LARGE) from None
    except (OSError, ValueError, SyntaxError):
        raise RenderError(UNREADABLE) from None
    if image.width * image.height > max_source_pixels:
        raise RenderError(TOO_LARGE)
    return image


def _image_page(body: bytes, number: int, width: int, max_pixels: int, max_source_pixels: int) -> tuple[object, str]:
    from PIL import Image, ImageOps

    image = _image(body, max_source_pixels)
    if not 1 <= number <= getattr(image, "n_frames", 1):
        raise RenderError(NO_SUCH_PAGE)
    try:
        image.seek(number - 1)
        image = ImageOps.exif_transpose(image)  # the photo the right way up, then the EXIF goes
        image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        scale = min(1.0, _scale(image.width, image.height, width, max_pixels))
        if scale < 1.0:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        # A fresh image from the pixels alone: nothing of the file's metadata comes along.
        clean = Image.new(image.mode, image.size)
        clean.paste(image)
    except (OSError, ValueError, SyntaxError, EOFError):
        raise RenderError(UNREADABLE) from None
    return clean, "image/jpeg" if clean.mode == "RGB" and _was_jpeg(body) else "image/png"


def _was_jpeg(body: bytes) -> bool:
    return body[:3] == b"\xff\xd8\xff"


def _child(argv: list[str]) -> int:
    request, content_type, *rest = argv
    *numbers, width, max_pixels, max_source_pixels, memory_bytes, cpu_seconds, max_output_bytes = rest
    _limit_self(int(memory_bytes), int(cpu_seconds), int(max_output_bytes))
    body = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    try:
        if content_type not in RENDERABLE:
            raise RenderError(UNREADABLE)
        if request == "info":
            if content_type == PDF:
                pages = len(_pdf(body))
            else:
                pages = getattr(_image(body, int(max_source_pixels)), "n_frames", 1)
            out.write(json.dumps({"pages": pages}).encode())
            return 0
        number = int(numbers[0])
        if content_type == PDF:
            image, kind = _pdf_page(body, number, int(width), int(max_pixels))
        else:
            image, kind = _image_page(body, number, int(width), int(max_pixels), int(max_source_pixels))
        encoded = io.BytesIO()
        if kind == "image/jpeg":
            image.save(encoded, format="JPEG", quality=85, optimize=True)  # type: ignore[attr-defined]
        else:
            image.save(encoded, format="PNG", optimize=False)  # type: ignore[attr-defined]
        size = image.size  # type: ignore[attr-defined]
        out.write(json.dumps({"type": kind, "width": size[0], "height": size[1]}).encode() + b"\n")
        out.write(encoded.getvalue())
        return 0
    except RenderError as exc:
        sys.stderr.write(exc.code + "\n")
    except MemoryError:
        sys.stderr.write(TOO_LARGE + "\n")
    except Exception:  # noqa: BLE001 -- whatever a hostile file makes the decoders raise, it is unreadable
        sys.stderr.write(UNREADABLE + "\n")
    return 2


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
