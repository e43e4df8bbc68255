# Helpers of the source model (workflows/rules/pretrain.smk).


def pretrain_outputs():
    """The source model's products: its class grid, and at mini/smoke the model the DAG trains and its summary."""
    products = [f"{RESULTS}/pretrain/source_grid.png"]
    if not PAPER_SCALE:
        products += [f"{RESULTS}/pretrain/summary.json", PRETRAINED]
    return products
