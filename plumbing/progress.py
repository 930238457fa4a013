"""A plain-text progress bar for the long imports (roster enrolment, practitioner directory).

Progress is the share of the file's bytes read so far (the binary file's position), so it costs nothing per
row and works for files of any size. Drawn on one line with ``\\r`` when the stream is a terminal, and as a
line every ``every`` seconds otherwise (logs of a batch job).

The readers of these files wrap the binary file in a text reader, which closes the file when it is collected
at the end of the file; a closed file therefore reads as fully read, never as an error at the last row.
"""

import time


class ProgressBar:
    def __init__(self, stream, fileobj, total_bytes: int, *, every: float = 5.0, width: int = 30):
        self.stream = stream
        self.fileobj = fileobj
        self.total = max(total_bytes, 1)
        self.every = every
        self.width = width
        self.started = time.monotonic()
        self.last = 0.0
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, rows: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        done = 1.0 if final else self._share_read()
        filled = int(done * self.width)
        rate = rows / max(now - self.started, 1e-6)
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done:6.1%}  {rows:,} lignes  {rate:,.0f} lignes/s"
        line = line.replace(",", "\u202f")  # French thousands separator
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""), ending="")
        else:
            self.stream.write(line)
        self.stream.flush()

    def _share_read(self) -> float:
        if self.fileobj.closed:  # the reader reached the end and let go of the file (module docstring)
            return 1.0
        return min(self.fileobj.tell() / self.total, 1.0)
