"""What the services raise when a request cannot be done, one class per HTTP status the API
answers with. The services raise them; the API and the CLI turn them into 4xx answers and
one-line messages."""

from __future__ import annotations


class ServiceError(Exception):
    """An error the caller made (or met); `status` is the HTTP status the API answers with and
    `detail` the one line the API and the CLI show."""

    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    status = 400


class Unprocessable(ServiceError):
    """A value the request may not carry (checked beyond what its schema says): 422."""
    status = 422


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class TookTooLong(ServiceError):
    status = 504
