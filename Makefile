# taskflow — PGXS build.
#
#   make && make install          build and install the extension
#   test/run                      pg_regress + TAP suites (see README.md)
#
# The extension script is assembled from the ordered parts in sql/src/ so each
# concern (catalog, definition API, engine, storage) keeps its own file.

EXTENSION   = taskflow
EXTVERSION  = 1.8.0
# the newest released version: the upgrade into EXTVERSION starts there
PREVVERSION = 1.7.0
MODULE_big  = taskflow
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
# released scripts are frozen files; the current version's script and the
# upgrade script into it are assembled from sql/src (see sql/README.md)
DATA        = sql/taskflow--1.0.0.sql sql/taskflow--1.1.0.sql sql/taskflow--1.0.0--1.1.0.sql \
              sql/taskflow--1.2.0.sql sql/taskflow--1.1.0--1.2.0.sql \
              sql/taskflow--1.3.0.sql sql/taskflow--1.2.0--1.3.0.sql \
              sql/taskflow--1.4.0.sql sql/taskflow--1.3.0--1.4.0.sql \
              sql/taskflow--1.5.0.sql sql/taskflow--1.4.0--1.5.0.sql \
              sql/taskflow--1.6.0.sql sql/taskflow--1.5.0--1.6.0.sql \
              sql/taskflow--1.7.0.sql sql/taskflow--1.6.0--1.7.0.sql
DATA_built  = sql/taskflow--$(EXTVERSION).sql sql/taskflow--$(PREVVERSION)--$(EXTVERSION).sql
SHLIB_LINK  = -lcurl -lz -ldeflate -lzstd
# libpq (copy nodes), the way contrib/dblink links it
SHLIB_LINK_INTERNAL = $(libpq)
PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir) -DTF_EXTVERSION='"$(EXTVERSION)"'
PG_CFLAGS   = -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels \
              -Wformat-security -Wno-format-truncation

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test/out --load-extension=taskflow

EXTRA_CLEAN = test/out tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# A fresh install runs every part of sql/src in name order; an update runs the
# hand-written delta (sql/upgrade/FROM--TO/pre_*.sql), then every replayable
# part (all but *.once.sql: CREATE OR REPLACE only), then post_*.sql.
SQL_PARTS   = $(sort $(wildcard sql/src/*.sql))
SQL_REPLAY  = $(filter-out %.once.sql,$(SQL_PARTS))
SQL_GUARD   = printf '%s\n' '\echo Use "CREATE EXTENSION taskflow" to load this file. \quit'

sql/taskflow--$(EXTVERSION).sql: $(SQL_PARTS)
	{ $(SQL_GUARD); cat $^; } > $@

UPGRADE_DIR = sql/upgrade/$(PREVVERSION)--$(EXTVERSION)
sql/taskflow--$(PREVVERSION)--$(EXTVERSION).sql: $(sort $(wildcard $(UPGRADE_DIR)/*.sql)) $(SQL_REPLAY)
	{ printf '%s\n' '\echo Use "ALTER EXTENSION taskflow UPDATE" to load this file. \quit'; \
	  cat $(sort $(wildcard $(UPGRADE_DIR)/pre_*.sql)) $(SQL_REPLAY) \
	      $(sort $(wildcard $(UPGRADE_DIR)/post_*.sql)); } > $@

installcheck: test/out
test/out:
	mkdir -p $@

# TAP suites (PostgreSQL::Test::Cluster). Must run as a non-root user.
PROVE_TESTS ?= $(sort $(wildcard test/t/*.pl))
# TAP_DIR holds tmp_check/ (logs, data dirs); give each concurrent run its own.
TAP_DIR ?= $(CURDIR)
prove:
	rm -rf '$(TAP_DIR)'/tmp_check && mkdir -p '$(TAP_DIR)'/tmp_check && \
	TESTDIR='$(TAP_DIR)' PATH="$(bindir):$$PATH" PGPORT='65432' \
	PG_REGRESS='$(pgxsdir)/src/test/regress/pg_regress' \
	prove -I '$(pgxsdir)/src/test/perl' -I '$(CURDIR)/test/perl' $(PROVE_FLAGS) $(PROVE_TESTS)

.PHONY: prove

# every object depends on the project headers (shared-memory layouts must agree)
$(OBJS): $(wildcard src/*.h)
# the library compares TF_EXTVERSION with the installed catalog's version
src/scheduler.o: Makefile
