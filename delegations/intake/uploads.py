"""An upload handler that never writes an upload to disk and drops one over the size cap.

Django's default handlers spill large uploads into temporary files; an upload that turns out
to hold a private key must not touch the disk at all.
"""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler


class OversizedUpload(InMemoryUploadedFile):
    """Stands for an upload that was over the cap; its content was discarded as it arrived."""

    oversized = True


class CappedMemoryUploadHandler(FileUploadHandler):
    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.buffer: BytesIO | None = BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.buffer is None:
            return None
        if start + len(raw_data) > settings.PORTAL_CERTIFICATE_MAX_BYTES:
            self.buffer = None  # drop what we had; the rest of the stream is discarded too
            return None
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        upload_class = InMemoryUploadedFile if self.buffer is not None else OversizedUpload
        content = self.buffer if self.buffer is not None else BytesIO()
        content.seek(0)
        return upload_class(
            content,
            self.field_name,
            self.file_name,
            self.content_type,
            file_size,
            self.charset,
            self.content_type_extra,
        )
