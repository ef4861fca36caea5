"""A run's accuracies from its per-epoch curve: final, best, validation-selected, time to target.

A curve point holds ``eval_*`` keys for the epochs whose eval (test) split was scored
(every epoch, only the last, or none: ``RunConfig.test_eval``) and ``val_*`` keys where
a validation split was carved from train. Selection only ever reads ``val_*``.
"""
from __future__ import annotations

from .stats import above_chance, wilson_interval


def _val_summary(last: dict) -> dict:
    return {"acc": last["val_acc"], "ci95": wilson_interval(last["val_correct"], last["n_val"]),
            "loss": last["val_loss"], "n": last["n_val"], "epoch": last["epoch"]}


def summarize_accuracy(config, curve: list[dict]) -> dict:
    """``final`` (last scored epoch of the eval split, 95% Wilson), ``best`` (over scored epochs:
    optimistic), ``val`` (the last epoch on the validation split), ``selected`` (the epoch
    chosen on validation, with its eval accuracy where that epoch was scored)."""
    scored = [p for p in curve if "eval_acc" in p]
    accuracy: dict = {"eval_split": config.eval_split, "test_eval": config.test_eval}
    if scored:
        last, best = scored[-1], max(scored, key=lambda p: p["eval_acc"])
        accuracy.update(final=last["eval_acc"], final_ci95=wilson_interval(last["eval_correct"], last["n_eval"]),
                        best=best["eval_acc"], best_epoch=best["epoch"], n_eval=last["n_eval"],
                        selected_on=f"'best' is the max over scored epochs of {config.eval_split!r} accuracy "
                                    "(optimistic: chosen on the split it reports); 'final' is the last epoch")
    else:
        accuracy.update(final=None, note=f"the {config.eval_split!r} split was never scored (a tuning trial: "
                                         "it is chosen on validation only)")
    if "val_acc" in curve[-1]:
        accuracy["val"] = _val_summary(curve[-1])
        chosen = max((p for p in curve if "val_acc" in p), key=lambda p: (p["val_acc"], -p["epoch"]))
        if "eval_acc" in chosen:
            accuracy["selected"] = {
                "epoch": chosen["epoch"], "val_acc": chosen["val_acc"], "n_val": chosen["n_val"],
                "test_acc": chosen["eval_acc"],
                "test_ci95": wilson_interval(chosen["eval_correct"], chosen["n_eval"]),
                "note": f"epoch chosen on the validation split, accuracy on {config.eval_split!r}: an unbiased 'best'"}
    return accuracy


def time_to_target(config, curve: list[dict], compile_s: float) -> dict:
    """Cumulative training time until the target accuracy is first reached, on the validation
    split where there is one (else the eval split), on two clocks: AlgoPerf's (the compile step
    and data waits on the clock) and MLPerf's (the compile step, i.e. initialisation, off it).
    Evaluation time is off both clocks."""
    split = "val" if "val_acc" in curve[-1] else "eval"
    tta = {"target": config.target_accuracy, "split": split, "epoch": None, "train_s": None,
           "train_s_no_compile": None, "epochs_run": len(curve), "total_train_s": curve[-1]["cum_train_s"],
           "note": "train_s: cumulative training wall time, compile step included (AlgoPerf's clock); "
                   "train_s_no_compile: the compile step excluded (MLPerf's); evaluation excluded from both"}
    if config.target_accuracy is not None:
        hit = next((p for p in curve if p.get(f"{split}_acc", -1) >= config.target_accuracy), None)
        if hit:
            tta.update(epoch=hit["epoch"], train_s=hit["cum_train_s"],
                       train_s_no_compile=max(0.0, hit["cum_train_s"] - compile_s))
    return tta


def collapse_flags(curve: list[dict], num_classes: int) -> list[dict]:
    """A run whose last scored top-1 (eval split, else validation) is not significantly above
    chance is flagged, with why."""
    split = "eval" if any("eval_acc" in p for p in curve) else "val"
    last = [p for p in curve if f"{split}_acc" in p][-1]
    correct, n = last[f"{split}_correct"], last[f"n_{split}"]
    if above_chance(correct, n, num_classes):
        return []
    lo, hi = wilson_interval(correct, n)
    return [{"flag": "collapsed",
             "why": f"final top-1 {last[f'{split}_acc']:.3f}{' on validation' if split == 'val' else ''} "
                    f"(95% Wilson [{lo:.3f}, {hi:.3f}] over "
                    f"{n} images) is not above chance 1/{num_classes} = {1 / num_classes:.3f}"}]
