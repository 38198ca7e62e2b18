import torch

from vpi.model.nets import _conv_block, _skip_block


def test_skip_block_equals_the_block_over_concatenated_skips() -> None:
    """The shared skip part, computed once per query, gives what L concatenated copies give."""
    torch.manual_seed(0)
    block = _conv_block(6 + 4, 5)
    batch, samples = 2, 3
    x = torch.randn(batch * samples, 6, 7, 9)
    skip = torch.randn(batch, 4, 7, 9)
    tiled = skip[:, None].expand(-1, samples, -1, -1, -1).flatten(0, 1)
    expected = block(torch.cat([x, tiled], 1))
    torch.testing.assert_close(_skip_block(block, x, skip), expected, rtol=1e-5, atol=1e-5)
    # the skips of query 0 must not leak into query 1's samples
    assert not torch.allclose(_skip_block(block, x, skip.flip(0)), expected, atol=1e-3)
