import torch

from vpi.model.vpi import soft_dice_loss


def test_soft_dice_loss_scores_overlap_and_ignores_invalid_pixels() -> None:
    target = torch.zeros(1, 8, 8)
    target[0, 2:5, 2:5] = 1
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    right = (target * 2 - 1).mul(20).sigmoid()  # confident and correct
    assert soft_dice_loss(right, target, valid).item() < 0.01
    assert soft_dice_loss(1 - right, target, valid).item() > 0.95
    # a tiny target counts as much as a large one: missing it costs the whole loss
    tiny = torch.zeros(1, 8, 8)
    tiny[0, 0, 0] = 1
    assert soft_dice_loss(torch.zeros(1, 8, 8), tiny, valid).item() > 0.4
    # wrong pixels outside the valid region do not count
    valid[0, 6:, :] = False
    wrong_outside = right.clone()
    wrong_outside[0, 6:, :] = 1
    torch.testing.assert_close(soft_dice_loss(wrong_outside, target, valid),
                               soft_dice_loss(right, target, valid))
