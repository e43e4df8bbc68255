# Helpers of the claims ledger (workflows/rules/claims.smk): which results each tier's ledger reads.

# headline and all: the tiers; regime: the fine-tuning-length study's own ledger (target regime), in which DT-1 is
# judged at the study's longest length and the claims it does not test are `not measured`.
CLAIMS_TIERS = ("headline", "all", "regime")
PAPER_REFERENCE = "results/paper_reference.csv"  # the papers' numbers with their sources, committed by hand


def claims_results(wildcards):
    """The results CSVs the ledger of a tier judges: the headline's studies, and in `all` also the studies only
    `all` runs (the claims they test are `not measured` in the headline's ledger)."""
    if wildcards.tier == "regime":
        return [f"{RESULTS}/difftune_main.csv", f"{RESULTS}/difftune_regime.csv"]
    files = [f"{RESULTS}/difftune_main.csv", f"{RESULTS}/deft_main.csv", f"{RESULTS}/deft_paired.csv",
             f"{RESULTS}/protein_motif.csv"]
    if wildcards.tier == "all":
        files.append(f"{RESULTS}/difftune_peft.csv")
        files += [f"{RESULTS}/difftune_seeds.csv"] if len(DIFFTUNE["training_seeds"]) > 1 else []
        files += [f"{RESULTS}/ablation_retention_set.csv"] if "retention_set" in ABLATION_KNOBS else []
        files += [f"{RESULTS}/controlnet.csv"] if CONTROLNET["conditions"] else []
    return files


def claims_outputs(tier):
    """The ledger of `tier`: its CSV and page."""
    return [f"{RESULTS}/claims/{tier}.csv", f"{RESULTS}/claims/{tier}.md"]


def claims_curves(wildcards):
    """The curve CSVs a tier's ledger reads: the forgetting curve, which the regime ledger does not judge."""
    return [] if wildcards.tier == "regime" else [f"{RESULTS}/forgetting.csv"]
