"""The JSON Schemas in ``schemas/``: generated from the models, committed, and checked for staleness.

Editors use them (manifests start with a ``yaml-language-server`` line pointing at them), ``validate``
checks raw YAML against the same schemas, and ``grantctl schema --check`` fails CI when a model
changed without regenerating them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://grantctl.dev/schemas/"


def _connection() -> dict[str, Any]:
    from grantctl.models import Connection

    return Connection.model_json_schema(by_alias=True)


def _config() -> dict[str, Any]:
    from grantctl.models import Config

    return Config.model_json_schema(by_alias=True)


def _state() -> dict[str, Any]:
    from grantctl.state.model import Grant

    schema = Grant.model_json_schema(by_alias=True)
    # The encrypted part and sops' own metadata sit beside the plaintext grant in the file.
    schema["properties"]["tokens"] = {
        "type": "object",
        "description": "SOPS-encrypted token values (ENC[AES256_GCM,...]).",
        "properties": {
            name: {"type": "string", "pattern": "^ENC\\[AES256_GCM,"}
            for name in ("access_token", "refresh_token", "id_token")
        },
        "additionalProperties": False,
    }
    schema["properties"]["sops"] = {"type": "object", "description": "SOPS metadata (keys, MAC)."}
    return schema


def _plan() -> dict[str, Any]:
    from grantctl.plan_render import plan_json_schema

    return plan_json_schema()


GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    "config.schema.json": _config,
    "connection.schema.json": _connection,
    "plan.schema.json": _plan,
    "state.schema.json": _state,
}


def render(file_name: str) -> str:
    """The exact text of one schema file: stable key order, two-space indent, trailing newline."""
    schema = {"$schema": SCHEMA_DIALECT, "$id": BASE_ID + file_name, **GENERATORS[file_name]()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
