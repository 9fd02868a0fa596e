from __future__ import annotations

import pytest

from patchgen.errors import UserError
from patchgen.kselftest import load_catalogue, select
from patchgen.settings import PROJECT_ROOT

CAT = load_catalogue(PROJECT_ROOT / "selftests" / "kselftests.toml")
AVAILABLE = ("nft_fib.sh", "nft_meta.sh", "nft_concat_range.sh", "bridge_brouter.sh",
             "nft_queue.sh")


def test_default_drops_heavy_tests() -> None:
    names = [p.name for p in select(CAT, AVAILABLE, "default")]
    assert "nft_concat_range.sh" not in names and "nft_fib.sh" in names


def test_all_keeps_heavy_tests_with_their_limits() -> None:
    plans = {p.name: p for p in select(CAT, AVAILABLE, "all")}
    assert plans["nft_concat_range.sh"].timeout == 1800
    assert plans["nft_concat_range.sh"].env == {"quicktest": "1"}
    assert plans["bridge_brouter.sh"].tools == {"ebtables": "/usr/sbin/ebtables-legacy"}


def test_quick_tier_is_what_the_tree_has() -> None:
    assert [p.name for p in select(CAT, AVAILABLE, "quick")] == ["nft_meta.sh", "nft_queue.sh"]


def test_unknown_test_name_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"no such test in this tree: nope\.sh"):
        select(CAT, AVAILABLE, "nft_fib.sh,nope.sh")
