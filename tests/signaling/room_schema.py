# SPDX-License-Identifier: LGPL-2.1-or-later
"""The room protocol's JSON Schema (signaling/docs/room-protocol.schema.json) as a validator for
the tests: every message a test receives from the daemon goes through check_server_message."""
import atexit
import json
import os
import sys

import jsonschema

_ROOT = os.environ.get("POINTCAST_SOURCE_ROOT",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCHEMA_PATH = os.path.join(_ROOT, "signaling", "docs", "room-protocol.schema.json")

with open(SCHEMA_PATH) as _f:
    SCHEMA = json.load(_f)
jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _validator(name):
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/" + name, "$defs": SCHEMA["$defs"]})


SERVER = _validator("server_message")
CLIENT = _validator("client_message")
checked = {"server": 0}


def check_server_message(message):
    """Raises AssertionError naming the message and the schema's objection."""
    errors = sorted(SERVER.iter_errors(message), key=lambda e: e.path)
    if errors:
        raise AssertionError("daemon sent a message outside room-protocol.schema.json: %r: %s"
                             % (message, "; ".join(e.message for e in errors[:3])))
    checked["server"] += 1
    return message


@atexit.register
def _report():
    sys.stderr.write("room-protocol.schema.json: %d messages from the daemon validated\n" % checked["server"])
