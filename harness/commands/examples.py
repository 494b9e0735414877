"""One example per command, shown at the end of its `--help` (a command's own epilog wins)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "models": "harness models\n  harness models --json | jq -r '.[].hub_id'",
    "plan": "harness plan smoke                       # CPU: the tiny built-in models\n"
    "  harness plan standard --model mistral-7b  # fit, download size and time on this GPU",
    "run": "harness run smoke                        # a 2-minute CPU run\n"
    "  harness run standard --model mistral-7b\n"
    "  harness run smoke --endpoint http://127.0.0.1:8000 --model qwen2.5-7b --served-model-name qwen",
    "merge": "harness merge job-*/results --results results",
    "runs": "harness runs --model mistral-7b --status ok\n  harness runs --json | jq -r '.[].run_id'",
    "show": "harness show 20250101T120000Z          # an id prefix is enough\n  harness show RUN --json",
    "compare": "harness compare RUN_A RUN_B\n  harness compare --suite techniques-cpu --model tiny-qwen",
    "export": "harness export --format csv --out tables/",
    "schema": "harness schema --check schema/run_record.v4.json",
    "dashboard": "harness dashboard && xdg-open dashboards/index.html",
    "gate": 'harness gate --latest --junit gate.xml --summary "$GITHUB_STEP_SUMMARY"',
    "baseline": "harness baseline set --latest --suite smoke\n  harness baseline list --json",
    "arch": "harness arch mixtral-8x7b --gpu H100-SXM --context 8192",
    "telemetry-check": "harness telemetry-check --json telemetry.json",
    "decide": "harness decide techniques-cpu --price CPU=0.10/h --max-accuracy-drop 0.01\n"
    '  harness decide techniques-cpu --markdown >> "$GITHUB_STEP_SUMMARY"',
    "import": "harness import vllm-bench bench.json --hardware '1x H100 80GB'\n  harness import lm-eval out/ --suite my-evals",
    "claims": "harness run claims-cpu && harness claims\n  harness claims --json | jq '.[].verdict'",
}
