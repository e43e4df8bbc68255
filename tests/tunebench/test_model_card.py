"""Model cards: the EMA count they state agrees with the training loop, and a suite class's card says diffusers
alone cannot load it (the cards of exported CLI runs are tested with their CLIs)."""

from dataclasses import replace

import pytest

from tunebench.config import TrainConfig, to_dict
from tunebench.model_card import CARD_KEY, CardFacts, ema_updates, model_card
from tunebench.training import ema_update_decay


@pytest.mark.parametrize("steps, start, every", [(8, 0, 1), (100, 40, 10), (95, 40, 10), (30, 400, 10)])
def test_ema_updates_count_what_the_training_loop_averages(steps, start, every):
    train = replace(TrainConfig(), steps=steps, ema_start=start, ema_every=every)
    averaged = sum(ema_update_decay(step, train) not in (None, 0.0) for step in range(steps))
    assert ema_updates(to_dict(train)) == averaged


def test_a_suite_class_card_says_how_to_load_it_and_what_diffusers_alone_cannot():
    run = {"scale": "smoke", "train": to_dict(replace(TrainConfig(), steps=7, seed=3))}
    facts = CardFacts(method="a DEFT head", base_model="runs/prior/model", data="crops", loader="load_head(folder)")
    card = model_card("deft.head", "HTransformHead", False, {"run_config": run, "weights": "trained",
                                                              "parameters": 1234, CARD_KEY: vars(facts)})
    assert "cannot load it: `HTransformHead` is tunebench's class (`deft.head.HTransformHead`)" in card
    assert "Load it with `load_head(folder)`" in card and "divided by 127" not in card  # no DiT inside
    assert "| base model | `runs/prior/model` |" in card and "| steps | 7 |" in card and "| seed | 3 |" in card
    assert "- parameters: 1234" in card and "nothing beyond" not in card
