"""SOPS-encrypted files: app credentials and the token fields of state documents.

Two implementations of one file format (sops 3.11 YAML with age recipients):

- :mod:`grantctl.sops.native`: in-process, for bulk work (``refresh`` rewrites hundreds of state
  files); reads what ``sops`` writes and writes what ``sops`` reads;
- :mod:`grantctl.sops.binary`: the real ``sops`` binary, for one-off files and as the fallback
  for what the native code does not support (:class:`SopsUnsupported`).

Example::

    from grantctl.sops import AgeKeyring, CreationRules, load, open_document, write_file

    doc = load("state/acme-ltd.yaml")
    doc.plaintext()["granted_scopes"]                  # no key needed
    opened = open_document(doc, AgeKeyring.from_environment())
    opened.tree["tokens"]["access_token"]              # decrypted, MAC verified
"""

from __future__ import annotations

from grantctl.sops._errors import SopsUnsupported
from grantctl.sops._format import Selectors, is_enc
from grantctl.sops.files import read_secrets
from grantctl.sops.keys import AgeKeyring, AgeStanza
from grantctl.sops.native import (
    OpenDocument,
    SopsDocument,
    SopsMetadata,
    decrypt,
    encrypt,
    load,
    loads,
    open_document,
    reencrypt,
    write_file,
)
from grantctl.sops.rules import CreationRule, CreationRules

__all__ = [
    "AgeKeyring",
    "AgeStanza",
    "CreationRule",
    "CreationRules",
    "OpenDocument",
    "Selectors",
    "SopsDocument",
    "SopsMetadata",
    "SopsUnsupported",
    "decrypt",
    "encrypt",
    "is_enc",
    "load",
    "loads",
    "open_document",
    "read_secrets",
    "reencrypt",
    "write_file",
]
