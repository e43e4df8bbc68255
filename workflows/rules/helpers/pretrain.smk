# Helpers of the source model (workflows/rules/pretrain.smk).


def pretrain_outputs():
    """The source model's products: its class grid, and the model and its summary when the DAG trains it."""
    products = [f"{RESULTS}/pretrain/source_grid.png"]
    if built_by_dag("source_dit"):
        products += [f"{RUNS}/source/summary.json", PRETRAINED]
    return products
