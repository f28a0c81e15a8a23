if config["simulator"] == "builtin":

    rule delphes_simulate:
        """Fast simulation with fast2full's builtin engine, reading the Delphes card."""
        input:
            events=PATHS.gen("{process}", "{chunk}"),
            card=lambda w: card_files(config["detectors"][w.detector]["card"]),
            pileup=pileup_inputs,
        output:
            PATHS.sim("{detector}", "{process}", "{chunk}"),
        log:
            PATHS.log("simulate", "{detector}", "{process}", "{chunk}"),
        benchmark:
            PATHS.bench("simulate", "{detector}", "{process}", "{chunk}")
        conda:
            "../../envs/simulate.yaml"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=60,
        params:
            config=stage_config("simulate"),
            card=lambda w: config["detectors"][w.detector]["card"],
            pileup=lambda w, input: " ".join(f"--pileup {f}" for f in input.pileup),
        shell:
            "python -m fast2full --log {log} simulate --config-json {params.config:q} --card {params.card}"
            " --in {input.events} {params.pileup} --out {output}"

else:

    rule delphes_simulate:
        """Fast simulation with real Delphes (DelphesHepMC3: $FAST2FULL_DELPHES, PATH, or the
        prebuilt ../shared/delphes/bin/DelphesHepMC3 with `pip install root==0.1a12`; the conda env
        provides conda-forge's build)."""
        input:
            events=PATHS.gen("{process}", "{chunk}", "hepmc"),
            card=lambda w: card_files(config["detectors"][w.detector]["card"]),
        output:
            PATHS.sim("{detector}", "{process}", "{chunk}"),
        log:
            PATHS.log("simulate", "{detector}", "{process}", "{chunk}"),
        benchmark:
            PATHS.bench("simulate", "{detector}", "{process}", "{chunk}")
        conda:
            "../../envs/delphes.yaml"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=120,
        params:
            config=stage_config("simulate"),
            card=lambda w: config["detectors"][w.detector]["card"],
        shell:
            "python -m fast2full --log {log} simulate --simulator delphes --config-json {params.config:q}"
            " --card {params.card} --in {input.events} --out {output}"
