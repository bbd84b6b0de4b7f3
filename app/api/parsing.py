"""How requests are read: bodies within a size, and arguments by their schemas.

`Request` caps every body (the app's `MAX_CONTENT_LENGTH`, from CONVEYOR_MAX_BODY_BYTES;
uploads raise it for their own request): Werkzeug refuses a larger Content-Length with a 413
before reading anything, and `Request` makes a chunked body that runs past the cap a 413 too
(Werkzeug alone would stop reading at the cap and parse what it got as if it were all).

`Blueprint` is flask-smorest's with a parser that turns a JSON body Python cannot parse safely
(an integer of more than 4,300 digits, nesting deep enough to exhaust the recursion limit)
into a 400 naming the body (`json`), as webargs does for malformed JSON, instead of a 500; and
that refuses unknown query parameters (422 naming them) as it does unknown body fields.
"""

import json

import flask
import flask_smorest
from webargs import flaskparser
from werkzeug import exceptions, wsgi
from werkzeug.utils import cached_property

TOO_DEEP = "the JSON body is nested too deeply"


class Request(flask.Request):
    """Flask's request, with a chunked body over `max_content_length` refused (413)."""

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if limit is None or self.content_length is not None or "wsgi.input_terminated" not in self.environ:
            return super().stream
        return _Capped(self.environ["wsgi.input"], limit)


class _Capped(wsgi.LimitedStream):
    """A stream read up to one byte past `cap`, to tell a body of exactly `cap` from a longer one."""

    def __init__(self, stream, cap: int):
        super().__init__(stream, cap + 1, is_max=True)
        self.cap = cap

    def readinto(self, buffer) -> int | None:
        count = super().readinto(buffer)
        if self.tell() > self.cap:
            raise exceptions.RequestEntityTooLarge()
        return count


class Parser(flaskparser.FlaskParser):
    """webargs' Flask parser, with a 400 for JSON bodies Python refuses to parse, and query
    strings held to their schema's `unknown` (the API's refuse unknown names)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**flaskparser.FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None}

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise  # webargs answers these itself (and treats an empty body as no body)
        except RecursionError:
            flaskparser.abort(400, messages={"json": [TOO_DEEP]})
        except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
            flaskparser.abort(400, messages={"json": [f"the JSON body cannot be read: {exc}"]})


class Blueprint(flask_smorest.Blueprint):
    """The API's blueprints: flask-smorest's, reading arguments with `Parser`."""

    ARGUMENTS_PARSER = Parser()
