"""Every file scheme mmengine loads checkpoints from goes through the safe
loader."""
from dtl_mm.checkpoint.schemes import unsafe_schemes


# --------------------------------------------------- URLs, as shipped
def test_every_mmengine_scheme_goes_through_the_safe_loader():
    assert unsafe_schemes() == []
