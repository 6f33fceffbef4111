"""``compare_methods`` and the ``neurorelevance compare`` sub-command (own parser; the main CLI adds it)."""
import argparse
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from NeuroRelevanceLib import explain
from NeuroRelevanceLib.errors import InputError
from NeuroRelevanceLib.metrics import compare_methods, region_perturbation
from NeuroRelevanceLib.metrics.cli import register
from NeuroRelevanceLib.models import save_weights
from NeuroRelevanceLib.nets import DeepTaylorCNN, build, spec

torch.set_num_threads(1)


def test_table_and_curves_agree_with_the_parts():
    torch.manual_seed(0)
    net = DeepTaylorCNN(channels=(2, 3), n_outputs=2).double()
    x = torch.randn(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gt = [np.zeros((8, 8, 8), bool) for _ in range(2)]
    for m in gt:
        m[2:5, 2:5, 2:5] = True
    pert = {"steps": 4, "patch": 2}
    c = compare_methods(net, x, ["gradient", "gradcam"], ground_truth=gt, brain_masks=[np.ones((8, 8, 8))] * 2,
                        perturbation=pert, device="cpu", dtype=torch.float64)
    references = ["oracle σ=0", "oracle σ=1", "oracle σ=2", "chance"]
    assert list(c.table.index) == ["gradient", "gradcam", *references]
    assert {"seconds", "aopc", "aopc_random", "aopc_gap", "mass_accuracy", "mass_accuracy_1vox", "rank_accuracy",
            "auc_brain", "pointing_1vox", "ground_truth_inclusivity", "input_inclusivity", "input_mass",
            "input_auc"} <= set(c.table.columns)
    assert len(c.per_subject) == 4 + 2 * 4 and set(c.curves) == {"gradient", "gradcam", "random"}
    # references: the mask itself is the oracle here (no change map), chance is the mask's share
    assert c.table.loc["oracle σ=0", "mass_accuracy"] == 1.0 and "mask itself" in c.notes[0]
    assert c.table.loc["chance", "mass_accuracy"] == pytest.approx(27 / 512)
    assert np.isnan(c.table.loc["chance", "aopc"])
    assert c.fraction_of_ceiling(1.0).loc["gradient", "auc_brain"] == pytest.approx(
        c.table.loc["gradient", "auc_brain"] / c.table.loc["oracle σ=1", "auc_brain"])
    r = explain(net, x[1:], "gradient", device="cpu", dtype=torch.float64).relevance
    direct = region_perturbation(net, x[1:], r, random_repeats=0, device="cpu", dtype=torch.float64, **pert)
    row = c.per_subject[(c.per_subject.subject == "subject2") & (c.per_subject.method == "gradient")].iloc[0]
    assert row.aopc == pytest.approx(direct.aopc[0], abs=1e-12)
    # one random reference per subject, shared by all methods
    assert c.per_subject.groupby("subject").aopc_random.nunique().eq(1).all()
    assert c.table.loc["gradient", "aopc"] == pytest.approx(c.per_subject.query("method == 'gradient'").aopc.mean())


def test_input_errors():
    net = DeepTaylorCNN(channels=(2,), n_outputs=2)
    x = torch.randn(1, 1, 4, 4, 4)
    with pytest.raises(InputError, match="one per subject"):
        compare_methods(net, x, ["gradient"], ground_truth=[None, None], device="cpu")
    with pytest.raises(InputError, match="non-empty list of method names"):
        compare_methods(net, x, "gradient", device="cpu")


@pytest.mark.parametrize("names", [["only-one"], ["a", "b", "c"]])
def test_one_name_per_subject_or_an_error(names):
    """Fewer names than inputs used to drop the unnamed subjects from the comparison without a word."""
    net = DeepTaylorCNN(channels=(2,), n_outputs=2)
    x = torch.randn(2, 1, 4, 4, 4)
    with pytest.raises(InputError, match=f"{len(names)} names given for 2 subjects"):
        compare_methods(net, x, ["gradient"], names=names, perturbation={"steps": 2, "random_repeats": 0},
                        device="cpu")


def parse(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["compare", *argv])


@pytest.fixture
def files(tmp_path):
    net = build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=2, channels=[2, 3])
    save_weights(net, tmp_path / "net.safetensors")
    card = {"name": "tiny", "architecture": spec(net), "weights": "net.safetensors",
            "input": {"channels": ["T1"], "shape": [8, 8, 8], "spacing": [2, 2, 2],
                      "normalization": {"type": "zscore"}},
            "output": {"type": "classification", "classes": ["control", "AD"]}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    rng = np.random.default_rng(0)
    subjects, masks = [], []
    for i in range(2):
        nib.save(nib.Nifti1Image(rng.normal(size=(10, 10, 10)).astype(np.float32), affine), tmp_path / f"s{i}.nii.gz")
        lesion = np.zeros((10, 10, 10), np.uint8)
        lesion[3:7, 3:7, 3:7] = 1
        nib.save(nib.Nifti1Image(lesion, affine), tmp_path / f"m{i}.nii.gz")
        subjects.append(str(tmp_path / f"s{i}.nii.gz"))
        masks.append(str(tmp_path / f"m{i}.nii.gz"))
    return tmp_path, subjects, masks


def test_cli_writes_table_and_png(files, capsys):
    folder, subjects, masks = files
    args = parse([*subjects, "--model", str(folder / "card.json"), "--methods", "lrp", "gradient_x_input",
                  "gradcam++", "--ground-truth", *masks, "--steps", "4", "--device", "cpu",
                  "--csv", str(folder / "out" / "table.csv"), "--png", str(folder / "out" / "curves.png"),
                  "--per-subject-csv", str(folder / "out" / "rows.csv")])
    assert args.func(args) == 0
    table = pd.read_csv(folder / "out" / "table.csv", index_col=0)
    assert list(table.index) == ["lrp", "gradient_x_input", "gradcam++", "oracle σ=0", "oracle σ=1",
                                 "oracle σ=2", "chance"]
    assert {"aopc", "aopc_random", "mass_accuracy", "rank_accuracy", "auc_brain"} <= set(table.columns)
    assert len(pd.read_csv(folder / "out" / "rows.csv")) == 2 * (3 + 4)
    assert (folder / "out" / "curves.png").stat().st_size > 5000
    out = capsys.readouterr().out
    assert "gradcam++" in out and "Ground truth (every non-zero label; scored on the whole grid" in out
    share, grown = 64 / 512, 160 / 512          # the 4³ lesion on the 8³ model grid, and grown by a ball
    assert f"| chance | {share:.3f} | {grown:.3f} | {share:.3f} | 0.500 | {grown:.3f} |" in out


def test_cli_ground_truth_labels_twins_brain_and_atlas(files, capsys):
    """The honest report: only the chosen label, scored in the brain, the twin's change as the oracle."""
    folder, subjects, masks = files
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    brain = np.zeros((10, 10, 10), np.uint8)
    brain[1:9, 1:9, 1:9] = 1
    atlas = np.zeros((10, 10, 10), np.int16)
    atlas[3:7, 3:7, 3:5], atlas[3:7, 3:7, 5:7], atlas[1:3, 1:9, 1:9], atlas[7:9, 1:9, 1:9] = 1, 2, 3, 4
    nib.save(nib.Nifti1Image(brain, affine), folder / "brain.nii.gz")
    nib.save(nib.Nifti1Image(atlas, affine), folder / "atlas.nii.gz")
    labelled, twins = [], []
    for i, (subject, mask) in enumerate(zip(subjects, masks, strict=True)):
        lab = np.asanyarray(nib.load(mask).dataobj).astype(np.uint8)
        lab[1:3, 1:3, 1:3] = 2                      # a second label that is not the truth
        nib.save(nib.Nifti1Image(lab, affine), folder / f"lab{i}.nii.gz")
        img = nib.load(subject)
        twin = np.asanyarray(img.dataobj).copy()
        twin[lab == 1] += 1.0                       # the subject lost signal in label 1
        nib.save(nib.Nifti1Image(twin, affine), folder / f"twin{i}.nii.gz")
        labelled.append(str(folder / f"lab{i}.nii.gz"))
        twins.append(str(folder / f"twin{i}.nii.gz"))
    args = parse([*subjects, "--model", str(folder / "card.json"), "--methods", "gradient", "--ground-truth",
                  *labelled, "--ground-truth-labels", "1", "--brain-masks", *[str(folder / "brain.nii.gz")] * 2,
                  "--twins", *twins, "--atlas", str(folder / "atlas.nii.gz"), "--steps", "2", "--device", "cpu",
                  "--csv", str(folder / "gt.csv")])
    assert args.func(args) == 0
    table = pd.read_csv(folder / "gt.csv", index_col=0)
    assert table.loc["chance", "mass_accuracy"] == pytest.approx(64 / 512)       # label 1 in an 8³ brain
    assert table.loc["chance", "region_precision"] == pytest.approx(2 / 4)
    assert table.loc["oracle σ=0", "mass_accuracy"] == pytest.approx(1.0)        # the change is the label
    assert table.loc["oracle σ=0", "region_precision"] == 1.0
    out = capsys.readouterr().out
    assert "label(s) [1]; scored inside the brain masks; the mask is 0.125 of that domain" in out
    assert "As a fraction of the oracle at σ = 1" in out
    args = parse([*subjects, "--model", str(folder / "card.json"), "--ground-truth", *labelled,
                  "--ground-truth-labels", "7", "--device", "cpu"])
    with pytest.raises(InputError, match="no voxel has label"):
        args.func(args)


def test_cli_errors(files):
    folder, subjects, masks = files
    args = parse([*subjects, "--model", str(folder / "card.json"), "--ground-truth", masks[0], "--device", "cpu"])
    with pytest.raises(InputError, match="give one per subject"):
        args.func(args)
    args = parse([subjects[0], "--model", str(folder / "card.json"), "--baseline", "zero", "--device", "cpu"])
    with pytest.raises(InputError, match="--baseline must be"):
        args.func(args)
    scripted = torch.jit.script(build("DeepTaylorCNN", seed=3, in_channels=1, n_outputs=2, channels=[2, 3]))
    scripted.save(str(folder / "net.ts"))
    args = parse([subjects[0], "--model", str(folder / "net.ts"), "--device", "cpu"])
    with pytest.raises(InputError, match="needs a model card"):
        args.func(args)


def test_lrp_uses_each_subjects_zb_box():
    """compare explains like the product: the zB box per subject (masked zeros pinned to [0, 0])."""
    from NeuroRelevanceLib.preprocessing import box_bounds

    net = DeepTaylorCNN(channels=(2, 3), n_outputs=2).double()
    x = torch.zeros(1, 1, 8, 8, 8, dtype=torch.float64)
    x[..., 2:6, 2:6, 2:6] = torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    box = box_bounds(x.numpy(), {"type": "percentile", "mask": "nonzero"}, support=None)
    target = int(net(x)[0].argmax())
    c = compare_methods(net, [x], ["lrp"], target, method_options={"lrp": {"preset": "epsilon-gamma-box"}},
                        perturbation={"steps": 2}, boxes=[box], device="cpu", dtype=torch.float64)
    direct = explain(net, x, "lrp", preset="epsilon-gamma-box", target=target, dtype=torch.float64,
                     low=torch.from_numpy(box[0]).double(), high=torch.from_numpy(box[1]).double())
    assert c.table.loc["lrp", "aopc"] == pytest.approx(region_perturbation(
        net, x, direct.relevance, target, steps=2, random_repeats=0, device="cpu", dtype=torch.float64).aopc[0])
    assert direct.relevance[x == 0].abs().max() == 0


def test_cli_target_takes_a_class_name_like_explain(files, capsys):
    """Trial 3: ``compare --target AD`` was refused ("expected an integer") while ``explain --target AD`` works."""
    folder, subjects, _ = files
    common = [subjects[0], "--model", str(folder / "card.json"), "--methods", "gradient_x_input", "--steps", "2",
              "--device", "cpu", "--random-repeats", "1"]
    tables = []
    for target in ("AD", "1"):
        args = parse([*common, "--target", target, "--csv", str(folder / f"t{target}.csv")])
        assert args.func(args) == 0
        tables.append(pd.read_csv(folder / f"t{target}.csv", index_col=0))
    assert tables[0]["aopc"].equals(tables[1]["aopc"])      # the same class, the same numbers
    for bad, message in (("MCI", "Unknown target class 'MCI'"), ("2", "--target 2")):
        args = parse([*common, "--target", bad])
        with pytest.raises(InputError, match=message):
            args.func(args)


def test_cli_says_why_the_cards_preset_is_used_plainly_then_in_detail(files, capsys):
    """compare prints the plain line (from the card's evidence) and, under it, the technical version."""
    from NeuroRelevanceLib.models import read_card
    from NeuroRelevanceLib.panel import recommendation_details, recommendation_text
    from NeuroRelevanceLib.pretrained import model_card_path

    folder, subjects, masks = files
    bundled = json.loads(model_card_path("ad_cnn").read_text())
    card = json.loads((folder / "card.json").read_text())
    card.update(recommended_preset="epsilon-plus", evidence=bundled["evidence"],
                recommendation_reason=bundled["recommendation_reason"])
    (folder / "card.json").write_text(json.dumps(card))
    args = parse([*subjects, "--model", str(folder / "card.json"), "--methods", "lrp", "--ground-truth", *masks,
                  "--steps", "2", "--device", "cpu"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    read = read_card(folder / "card.json")
    assert f"LRP: {recommendation_text(read)}\n" in out and "a random map would put there" in out
    for line in recommendation_details(read).splitlines():
        assert f"     {line}\n" in out
