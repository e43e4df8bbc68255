"""The diffusers DiT fixes (sources in `tunebench/models.py`), DiT initialisation, and offline export/loading."""

import json
import math
import re

import pytest
import torch
from diffusers import DiTTransformer2DModel

from tests.conftest import TEST_FACTS
from tunebench.models import (
    ModelLoadError,
    apply_dit_fixes,
    build_dit,
    count_parameters,
    drop_labels,
    export_dit,
    fill_zero_parameters,
    load_dit,
    null_class,
    read_sidecar,
    tensors_sha256,
)


def _inputs(model, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    c, s = model.config.in_channels, model.config.sample_size
    return torch.randn(n, c, s, s, generator=g), torch.randint(0, 1000, (n,), generator=g), torch.arange(n) % 5


@pytest.mark.sanity
def test_unfixed_diffusers_dit_drops_labels_inside_the_model():
    """Fixture sanity check of diffusers' own DiT, not of our fix. The pitfall: in train mode each block draws its own
    label dropout, so two passes differ."""
    torch.manual_seed(0)
    plain = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=3, out_channels=6,
                                  num_layers=2, sample_size=8, patch_size=4, num_embeds_ada_norm=5).train()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, t, _ = _inputs(plain, n=64)
    y = torch.zeros(64, dtype=torch.long)
    assert not torch.equal(plain(x, t, y).sample, plain(x, t, y).sample)


def test_dropped_sample_is_exactly_unconditional(tiny_model):
    model = tiny_model.train()
    x, t, y = _inputs(model, n=16)
    dropped = drop_labels(y, prob=0.5, null=null_class(model), generator=torch.Generator().manual_seed(1))
    assert (dropped == null_class(model)).any() and (dropped != null_class(model)).any()
    out = model(x, t, dropped).sample
    assert torch.equal(out, model(x, t, dropped).sample)  # no hidden randomness left in train mode
    unconditional = model(x, t, torch.full_like(y, null_class(model))).sample
    mask = dropped == null_class(model)
    assert torch.equal(out[mask], unconditional[mask])
    assert not torch.allclose(out[~mask], unconditional[~mask])


def test_label_dropout_rate_and_null_index():
    labels = torch.zeros(20000, dtype=torch.long)
    dropped = drop_labels(labels, 0.1, null=13, generator=torch.Generator().manual_seed(0))
    assert set(dropped.unique().tolist()) == {0, 13}
    assert abs((dropped == 13).float().mean().item() - 0.1) < 0.01


def test_embedders_are_tied_and_stay_tied_after_a_step(smoke_run):
    model = build_dit(smoke_run.model)
    shared = model.transformer_blocks[0].norm1.emb
    assert all(block.norm1.emb is shared for block in model.transformer_blocks)
    untied = DiTTransformer2DModel(**{k: v for k, v in model.config.items() if not k.startswith("_")})
    per_embedder = count_parameters(shared)
    assert count_parameters(untied) - count_parameters(model) == (len(model.transformer_blocks) - 1) * per_embedder
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t, y = _inputs(model)
    model(x, t, y).sample.pow(2).mean().backward()
    optimizer.step()
    assert all(block.norm1.emb is shared for block in model.transformer_blocks)


def test_timestep_frequencies_match_original_dit(tiny_model):
    t = torch.tensor([0, 1, 17, 500, 999])
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    reference = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    ours = tiny_model.transformer_blocks[0].norm1.emb.time_proj(t)
    assert torch.allclose(ours, reference, atol=1e-5)
    shifted = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - 1))
    assert not torch.allclose(ours, torch.cat([torch.cos(t[:, None] * shifted), torch.sin(t[:, None] * shifted)], -1),
                              atol=1e-3)


def test_dit_initialisation_gives_zero_output_and_norm_eps(smoke_run):
    model = build_dit(smoke_run.model)
    x, t, y = _inputs(model)
    assert torch.equal(model(x, t, y).sample, torch.zeros(6, 6, 16, 16))
    assert model.transformer_blocks[0].norm1.norm.eps == model.transformer_blocks[0].norm3.eps == 1e-6
    assert model.config.out_channels == 2 * model.config.in_channels  # learned sigma


def test_export_reloads_offline_identically(tiny_model, smoke_run, tmp_path):
    folder = export_dit(tiny_model, tmp_path / "model", smoke_run, extra={"dataset": "source"}, facts=TEST_FACTS)
    assert (folder / "diffusion_pytorch_model.safetensors").is_file() and (folder / "config.json").is_file()
    assert read_sidecar(folder)["run_config"]["scale"] == "smoke"
    loaded = load_dit(folder).eval()
    x, t, y = _inputs(tiny_model)
    assert torch.equal(loaded(x, t, y).sample, tiny_model.eval()(x, t, y).sample)
    assert all(b.norm1.emb is loaded.transformer_blocks[0].norm1.emb for b in loaded.transformer_blocks)
    plain = DiTTransformer2DModel.from_pretrained(folder)  # a standard diffusers folder
    assert count_parameters(plain) > count_parameters(loaded)
    card = (folder / "README.md").read_text()  # the folder says how to load it as DiT, and why
    assert "tunebench.models.load_dit(folder)" in card and all(fix in card for fix in read_sidecar(folder)["fixes"])


def test_tensors_sha256_identifies_weights_across_file_formats(tiny_model, smoke_run, tmp_path):
    loaded = load_dit(export_dit(tiny_model, tmp_path / "model", smoke_run, facts=TEST_FACTS))
    assert tensors_sha256(loaded) == tensors_sha256(tiny_model)
    with torch.no_grad():
        loaded.proj_out_2.bias[0] += 1e-6
    assert tensors_sha256(loaded) != tensors_sha256(tiny_model)


def test_hub_id_offline_fails_with_local_folder_advice():
    with pytest.raises(ModelLoadError, match="--local-dir"):
        load_dit("facebook/DiT-XL-2-256")


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not a DiT save_pretrained folder"):
        load_dit(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_dit(tmp_path / "missing" / "model")


def test_refuses_to_tie_different_embedders(smoke_run):
    plain = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=3, num_layers=2,
                                  sample_size=8, patch_size=4, num_embeds_ada_norm=5)
    with pytest.raises(ModelLoadError, match="block 1 embedder"):
        apply_dit_fixes(plain)


def test_every_model_loader_refuses_weights_that_do_not_fit_config(tmp_path):
    # A UNet saved with one layer per block, whose config.json then claims two: diffusers alone would only warn and
    # leave the second layers random. The DEFT backbone loader (and every other folder loader) goes through the check.
    import json

    import safetensors.torch
    from diffusers import UNet2DModel

    from deft.backbone import load_backbone
    from tunebench.models import load_pretrained

    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    unet.save_pretrained(tmp_path)
    assert isinstance(load_pretrained(UNet2DModel, tmp_path), UNet2DModel)  # a folder that fits loads
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "layers_per_block": 2}))  # tensors of another shape
    for load in (lambda: load_pretrained(UNet2DModel, tmp_path), lambda: load_backbone(tmp_path)):
        with pytest.raises(ModelLoadError, match=re.escape(f"{tmp_path} is not a UNet2DModel save_pretrained folder "
                                                           "that loads (")):
            load()
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    tensors = safetensors.torch.load_file(str(weights))
    del tensors["conv_out.weight"]  # a tensor missing: diffusers would leave it random
    safetensors.torch.save_file(tensors, str(weights))
    for load in (lambda: load_pretrained(UNet2DModel, tmp_path), lambda: load_backbone(tmp_path)):
        with pytest.raises(ModelLoadError, match=re.escape(f"the weights in {tmp_path} do not match its config.json "
                                                           "(1 tensors missing, e.g. conv_out.weight)")):
            load()


@pytest.mark.parametrize("norm_eps", [1e-6, 1e-5, None])
def test_a_folder_with_diffusers_layernorm_eps_loads_with_dit_eps(tmp_path, norm_eps):
    # A saved folder whose config.json has DiT's eps, diffusers' 1e-5 (facebook/DiT-XL-2-256's transformer config) or
    # no norm_eps at all (diffusers then builds 1e-5): every LayerNorm of every block loads with DiT's 1e-6. The
    # paper's DiT-XL/2 layout (patch 2, 4 latent channels, learned sigma, 1000 classes) at a test's width and depth.
    torch.manual_seed(0)
    reference = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                      num_layers=3, sample_size=8, patch_size=2, num_embeds_ada_norm=1000,
                                      norm_eps=1e-6)
    fill_zero_parameters(reference, std=0.05)
    for block in reference.transformer_blocks[1:]:  # converted checkpoints repeat one embedder per block
        block.norm1.emb.load_state_dict(reference.transformer_blocks[0].norm1.emb.state_dict())
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("norm_eps")
    if norm_eps is not None:
        config["norm_eps"] = norm_eps
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = load_dit(tmp_path).eval()
    eps = {name: module.eps for name, module in loaded.named_modules() if isinstance(module, torch.nn.LayerNorm)}
    assert len(eps) == 2 * 3 + 1 and set(eps.values()) == {1e-6}  # norm1 and norm3 of each block, norm_out
    assert loaded.config.norm_eps == 1e-6
    x, t, y = _inputs(loaded)
    x = x * 1e-3  # small activations, where the eps matters
    with torch.no_grad():
        expected = apply_dit_fixes(reference).eval()(x, t, y).sample
        assert torch.equal(loaded(x, t, y).sample, expected)
        norms = [m for m in loaded.modules() if isinstance(m, torch.nn.LayerNorm)]
        for module in norms:  # the eps changes these outputs: the comparison above would see a wrong one
            module.eps = 1e-5
        assert not torch.equal(loaded(x, t, y).sample, expected)
    plain = DiTTransformer2DModel.from_pretrained(tmp_path)  # what diffusers alone builds from the folder
    plain_eps = {m.eps for m in plain.modules() if isinstance(m, torch.nn.LayerNorm)}
    assert plain_eps == ({1e-6} if norm_eps == 1e-6 else {1e-6, 1e-5})
