"""The console's sign-in flow cookie: what leaves for the provider comes back the same, anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.console.oidc import Flow, SignInRefusedError

TOKENS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=86)


@given(state=TOKENS, nonce=TOKENS, verifier=TOKENS, after=st.text(max_size=300))
def test_a_flow_comes_back_from_its_cookie_as_it_left(state: str, nonce: str, verifier: str, after: str) -> None:
    flow = Flow(state, nonce, verifier, after)

    assert Flow.from_cookie(flow.cookie_value()) == flow


@pytest.mark.parametrize("value", [None, "", "state.nonce.verifier", "state..verifier.Lw", "a.b.c.d.e", "a.b.c.%%%"])
def test_a_missing_or_damaged_flow_cookie_is_no_sign_in_in_progress(value: str | None) -> None:
    with pytest.raises(SignInRefusedError):
        Flow.from_cookie(value)
