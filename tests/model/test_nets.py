import pytest
import torch

from vpi.model.nets import SegmentationDecoder, _conv_block, _skip_block, prototype_similarity


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


def test_similarity_map_is_the_cosine_of_each_prototype_with_each_pixel() -> None:
    torch.manual_seed(0)
    keys = torch.randn(2, 5, 3, 4)
    z = torch.randn(2, 6, 5)
    similarity = prototype_similarity(keys, z)
    assert similarity.shape == (2, 6, 3, 4)
    expected = torch.nn.functional.cosine_similarity(
        z[:, :, :, None, None], keys[:, None], dim=2)
    torch.testing.assert_close(similarity, expected, rtol=1e-5, atol=1e-6)
    aligned = prototype_similarity(keys, keys[:, :, 1, 2][:, None] * 3.0)  # the pixel's own key
    torch.testing.assert_close(aligned[:, 0, 1, 2], torch.ones(2))


def test_decoder_with_the_similarity_map_responds_to_where_z_matches() -> None:
    """The paper's decoder adds z as a bias, the same at every pixel; the extension lets z pick
    out the pixels whose features match it."""
    from vpi.model.backbone import Features

    torch.manual_seed(0)
    decoder = SegmentationDecoder((8, 4, 4, 4), 5, (8, 4, 4), similarity_map=True).eval()
    features = Features(torch.randn(1, 8, 4, 4), torch.randn(1, 4, 4, 4), torch.randn(1, 4, 8, 8),
                        torch.randn(1, 4, 16, 16))
    z, keys = torch.randn(1, 3, 5), torch.randn(1, 5, 4, 4)
    logits = decoder(features, z, (16, 16), keys)
    assert logits.shape == (1, 3, 16, 16)
    with torch.no_grad():
        decoder.prototype_proj.weight.zero_()  # no bias path: z acts through the map alone
    assert not torch.allclose(decoder(features, z, (16, 16), keys)[:, 0],
                              decoder(features, -z, (16, 16), keys)[:, 0])
    with pytest.raises(ValueError, match="keys"):
        decoder(features, z, (16, 16))
    plain = SegmentationDecoder((8, 4, 4, 4), 5, (8, 4, 4))
    assert plain.similarity_proj is None
