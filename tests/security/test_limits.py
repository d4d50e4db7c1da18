"""Every size limit is documented, named in its refusal, and raisable."""

from __future__ import annotations

import re
import tomllib

from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

LIMIT_VARS = sorted(
    set(re.findall(r"STUDIO_MAX_[A-Z_]+", "".join(p.read_text() for p in (ROOT / "studio").rglob("*.py"))))
)

NOT_UPLOADS = {"STUDIO_MAX_STORED_BYTES": "tests/watch/test_stored.py"}  # stored runs: a folder the Live page reads


def test_the_upload_limit_is_configured_and_documented():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    size = config["server"]["maxUploadSize"]
    assert isinstance(size, int) and size > 0
    security = (ROOT / "SECURITY.md").read_text()
    assert "server.maxUploadSize" in security
    # the studio's own file limits must not be lower than what the uploader lets through
    from studio.data import MAX_DATA_BYTES
    from studio.models.loaders import MAX_MODEL_BYTES

    assert MAX_MODEL_BYTES >= size * 2**20 and MAX_DATA_BYTES >= size * 2**20


def test_every_limit_is_documented_and_has_a_corpus_case():
    assert {"STUDIO_MAX_ROWS", "STUDIO_MAX_IMAGE_PIXELS", "STUDIO_MAX_ZIP_MEMBERS", "STUDIO_MAX_ZIP_BYTES"} <= set(LIMIT_VARS)
    security = (ROOT / "SECURITY.md").read_text()
    for var in LIMIT_VARS:
        assert f"`{var}`" in security, var
        cases = [c for c in make_corpus.CASES if var in c.expect]
        if var in NOT_UPLOADS:  # not read from an upload: its own test sets it and expects the refusal naming it
            assert re.search(rf'setenv\("{var}"(.|\n)*?match="{var}"', (ROOT / NOT_UPLOADS[var]).read_text()), var
            continue
        assert cases, f"no corpus case shows the refusal naming {var}"
