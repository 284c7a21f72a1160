# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_HOME := .dpa-run
# `make run` always uses the embedded default: a throwaway SQLite installation in .dpa-run.
DPA := env -u DPA_DATABASE_URL -u DPA_MASTER_KEY DPA_HOME=$(RUN_HOME) $(BIN)/dpa --actor make-run
# `make run` tells one story on any day: the month it runs in plays November 2026, the month
# the story was written for. Every date of the story, and every date in the samples it ingests
# (copies of tests/data made by tests/moved_samples.py), moves by as many months.
MONTH := $(shell TZ=Europe/Brussels date +%Y-%m)
month = $(shell date -d '$(MONTH)-01 $(1) months' +%Y-%m)
last_day = $(shell date -d '$(call month,$(1))-01 +1 month -1 day' +%Y-%m-%d)
SAMPLES := $(RUN_HOME)/samples
TODAY := $(shell TZ=Europe/Brussels date +%Y-%m-%d)

.PHONY: run test lint typecheck bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	@rm -rf $(RUN_HOME)
	@echo "== the story plays in $(MONTH): the samples of tests/data, moved to recent dates"
	$(BIN)/python -m tests.moved_samples $(MONTH) $(SAMPLES)
	@echo "== dpa init: home, master key (0600), database, default Annex 1 register"
	$(DPA) init
	@echo; echo "== dpa register show: the processing register in force"
	$(DPA) register show
	@echo; echo "== two customers (controllers)"
	$(DPA) customer add acme --name "Acme Plumbing BV" --contact "privacy@acme.example" --contract monthly --started $(call month,-32)-01
	$(DPA) customer add globex --name "Globex Telecom NV" --contract fixed-12m --started $(call month,-22)-15
	@echo; echo "== ingest: the platform's files, encrypted (CDRs, voicemail spool, recordings, contacts)"
	$(DPA) ingest cdr $(SAMPLES)/asterisk/Master.csv --customer acme
	@echo "   again, as cron would: the file's cursor says nothing was appended; then read from the start: every call already stored, none stored twice"
	$(DPA) ingest cdr $(SAMPLES)/asterisk/Master.csv --customer acme
	$(DPA) ingest cdr $(SAMPLES)/asterisk/Master.csv --customer acme --from-start
	@echo "   a FreePBX Master.csv: a ring group's and a follow-me's legs share uniqueids (7 CDRs, 3 uniqueids): all 7 stored"
	$(DPA) ingest cdr $(SAMPLES)/asterisk/FreePBX-Master.csv --customer acme
	$(DPA) ingest voicemail $(SAMPLES)/voicemail --customer acme
	$(DPA) ingest recording $(SAMPLES)/recordings/*.wav --customer acme
	$(DPA) ingest contacts $(SAMPLES)/contacts.csv --customer globex
	@echo "   the rest of Annex 1: a received fax, an identity document, the PBX's security log (IP addresses), a SIP capture, the call-back list"
	$(DPA) ingest fax $(SAMPLES)/fax --customer acme
	$(DPA) ingest id-document $(SAMPLES)/iddocs --customer acme
	$(DPA) ingest ip-log $(SAMPLES)/iplogs/security --customer acme
	$(DPA) ingest capture $(SAMPLES)/real/captures/call.pcap --customer acme
	$(DPA) ingest callback-list $(SAMPLES)/callbacks/to-react.csv --customer acme
	@echo "   and the call-back list's missed calls from acme's CDRs: inbound calls nobody answered or called back within 24 hours (the samples' two are from withheld numbers: never listed)"
	$(DPA) ingest callback-list --from-missed-calls 24 --inbound-context from-pstn --days 366 --customer acme
	@echo; echo "== dpa stats: call volumes and answer rates without personal data (ClientCom 7.7): cells under 10 records suppressed"
	$(DPA) stats --customer acme --by month --from $(call month,-8)-01 --to $(call last_day,-8)
	@echo; echo "== acme instructs its own retention of call recordings (Art. 28(3)(a)), within the register's bounds"
	$(DPA) customer retention set acme --activity call_recording --keep 90d --reference "DPA annex 2" --instructed $(call month,-1)-03
	$(DPA) customer retention set acme --activity call_recording --keep 2y; test $$? -eq 3  # refused: beyond the register's 1 year
	$(DPA) customer retention show acme
	@echo; echo "== a third customer gave notice in $(call month,-3): its contract ended $(call last_day,-3), its window closed $(call last_day,-1)"
	$(DPA) customer add initech --name "Initech SRL" --contract monthly --started $(call month,-42)-01
	$(DPA) ingest recording $(SAMPLES)/recordings/*.wav --customer initech
	$(DPA) ingest contacts $(SAMPLES)/contacts.csv --customer initech
	$(DPA) customer terminate initech --on $(call month,-3)-10
	@echo; echo "== dpa subject find: one caller, whatever the spelling, through the blind index"
	$(DPA) subject find "0032 470 12 34 56"
	$(DPA) subject find 203.0.113.7
	@echo; echo "== acme gave notice last month: its contract ended $(call last_day,-1), then a two-month export window (until $(call last_day,1))"
	$(DPA) customer terminate acme --on $(call month,-1)-10
	$(DPA) ingest cdr $(SAMPLES)/asterisk/Master.csv --customer acme; test $$? -eq 3  # refused: exit 3, export only
	$(DPA) customer list
	$(DPA) customer show globex
	@echo; echo "== dpa retention plan: what falls due when, per customer, category and activity"
	$(DPA) retention plan
	@echo; echo "== a legal hold on acme's voicemail (an authority's request): held records survive every sweep"
	$(DPA) hold add --customer acme --category voicemail --reason "Police request for call data" --reference PV-2026-1187
	$(DPA) hold list
	@echo; echo "== dpa retention sweep: expired recordings deleted, initech purged (window closed), the hold respected"
	$(DPA) retention sweep
	$(DPA) retention plan --customer acme
	@echo; echo "== initech's signed deletion certificate (Art. 28(3)(g)), and every erasure in the ledger"
	$(DPA) retention certificate initech
	$(DPA) audit log --action delete
	@echo; echo "== dpa export create: acme's data (it is in its window), encrypted to acme's own age key"
	@$(BIN)/python -c "import os, pyrage; k = pyrage.x25519.Identity.generate(); fd = os.open('$(RUN_HOME)/acme.key', os.O_WRONLY | os.O_CREAT, 0o600); os.write(fd, str(k).encode()); print(k.to_public())" > $(RUN_HOME)/acme.pub
	$(DPA) export create --customer acme --recipient $$(cat $(RUN_HOME)/acme.pub) -o $(RUN_HOME)/acme-export.zip.age
	$(DPA) export create --customer acme --subject "+32 470 12 34 56" --category cdr --recipient $$(cat $(RUN_HOME)/acme.pub)
	$(DPA) export list
	@echo; echo "== what acme finds in its package after decrypting it: the manifest (every file's SHA-256)"
	@$(BIN)/python -c "import io, json, zipfile, pyrage; k = pyrage.x25519.Identity.from_str(open('$(RUN_HOME)/acme.key').read()); z = zipfile.ZipFile(io.BytesIO(pyrage.decrypt(open('$(RUN_HOME)/acme-export.zip.age', 'rb').read(), [k]))); print('\n'.join(z.namelist())); m = json.loads(z.read('manifest.json')); print(json.dumps({k: m[k] for k in ('customer', 'created_at', 'scope', 'records', 'categories')}, indent=2))"
	@echo; echo "== a data subject's request (Art. 12, 17): acme passes on a caller's erasure request, received today, due in one calendar month"
	$(DPA) request open --customer acme --kind erasure --subject "0478 11 22 33" --received $(TODAY) --reference ACME-DSR-1
	$(DPA) request list
	@echo "   fulfilled: the caller's CDRs masked (the other party and the billing fields stay), the rest deleted, what a hold keeps refused with its reason"
	$(DPA) request fulfil 1
	$(DPA) request show 1
	$(DPA) subject find "0478 11 22 33"
	$(DPA) audit log --action request
	@echo; echo "== initech's window closed on $(call last_day,-1): its export is refused"
	$(DPA) export create --customer initech --recipient $$(cat $(RUN_HOME)/acme.pub); test $$? -eq 3  # refused: exit 3
	@echo; echo "== dpa register export: the Art. 30 record (also written as HTML to $(RUN_HOME)/art30.html)"
	$(DPA) register export --format md
	$(DPA) register export --format html -o $(RUN_HOME)/art30.html
	@echo; echo "== dpa audit log: every action, hash-chained"
	$(DPA) audit log
	@echo; echo "== dpa audit checkpoint + verify: the chain and its signed head"
	$(DPA) audit checkpoint -o $(RUN_HOME)/ledger-head.json
	$(DPA) audit verify --checkpoint $(RUN_HOME)/ledger-head.json
	@echo; echo "== dpa audit report: the DPO's findings; a planted one first (a legal hold placed without a reference)"
	$(DPA) hold add --customer globex --reason "Billing dispute"
	$(DPA) audit report --checkpoint $(RUN_HOME)/ledger-head.json; test $$? -eq 1  # exit 1: a warning
	@echo; echo "== fixed: the hold is placed again with its reference; the report is clean (also as HTML: $(RUN_HOME)/audit.html)"
	$(DPA) hold release 2 --reason "Placed again with its reference"
	$(DPA) hold add --customer globex --reason "Billing dispute" --reference DISP-2026-17
	@echo; echo "== dpa disclose: the police demand one caller's CDRs (Fonzer 3.3): a package for their age key, a hold on what was handed over, the ledger; acme is listed for support to be told"
	@$(BIN)/python -c "import pyrage; print(pyrage.x25519.Identity.generate().to_public())" > $(RUN_HOME)/police.pub
	$(DPA) disclose create --customer acme --subject "+32 470 12 34 56" --category cdr --authority "Federal Judicial Police Brussels" --reference BR.55.L1.2026-118 --legal-basis "Art. 46bis Code of Criminal Procedure (BE)" --recipient $$(cat $(RUN_HOME)/police.pub)
	@echo; echo "== an investigating judge's order that forbids telling acme until $(call last_day,1): not told, listed as confidential"
	$(DPA) disclose create --customer acme --category voicemail --authority "Investigating judge, Brussels" --reference "JI 2026/0412" --legal-basis "Art. 88bis Code of Criminal Procedure (BE)" --recipient $$(cat $(RUN_HOME)/police.pub) --confidential-until $(call last_day,1)
	$(DPA) disclose list
	@echo; echo "== the regulator asks: what did you hand over, to whom, on what basis?"
	$(DPA) audit log --action disclose
	$(DPA) audit checkpoint -o $(RUN_HOME)/ledger-head.json
	$(DPA) audit report --format html -o $(RUN_HOME)/audit.html
	$(DPA) audit report --checkpoint $(RUN_HOME)/ledger-head.json

lint: $(STAMP)
	$(BIN)/ruff check dpa retention exports tests bench
	$(BIN)/ruff format --check dpa retention exports tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs in one worker per CPU (pytest-xdist), each with its own PostgreSQL server:
# `make test TEST_WORKERS=0` runs it in this one process.
TEST_WORKERS ?= auto
test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS)

# `make bench BENCH=--quick` for a smoke run; BENCH="--backend sqlite" for one backend.
# The sweep's scaling with the table's size is a PostgreSQL benchmark: it takes only --quick,
# and is left out when BENCH names SQLite alone.
BENCH ?=
bench: $(STAMP)
	$(BIN)/python bench/ingest.py $(BENCH)
	$(BIN)/python bench/sweep.py $(BENCH)
	$(BIN)/python bench/export.py $(BENCH)
	$(BIN)/python bench/audit.py $(BENCH)
	$(if $(findstring sqlite,$(BENCH)),,$(BIN)/python bench/sweep_scale.py $(filter --quick,$(BENCH)))

clean:
	rm -rf $(VENV) $(RUN_HOME) dist build .mypy_cache .ruff_cache .pytest_cache .hypothesis
