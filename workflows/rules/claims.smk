# The claims ledger: each paper claim, our number with its 95% interval and a verdict computed by
# benchmarks.claims, one per tier (the headline's judges only the headline's studies).

include: "helpers/claims.smk"


rule claims:
    wildcard_constraints:
        tier="|".join(CLAIMS_TIERS),
    input:
        results=claims_results,
        curves=claims_curves,
        paper=PAPER_REFERENCE,
    output:
        csv=f"{RESULTS}/claims/{{tier}}.csv",
        md=report(f"{RESULTS}/claims/{{tier}}.md", caption="../report/claims.rst", category="Claims"),
    log:
        f"{RUNS}/logs/claims/{{tier}}.log",
    benchmark:
        f"{RUNS}/benchmarks/claims/{{tier}}.tsv"
    params:
        tasks=",".join(DEFT["tasks"]),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.ledger --results {input.results} --curves {input.curves}"
        " --paper-reference {input.paper} --tasks {params.tasks} --scale {params.scale}"
        " --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"
