# taskflow — PGXS build.
#
#   make && make install          build and install the extension
#   test/run                      pg_regress + TAP suites (see README.md)
#
# The extension script is assembled from the ordered parts in sql/src/ so each
# concern (catalog, definition API, engine, storage) keeps its own file.

EXTENSION   = taskflow
EXTVERSION  = 1.0.0
MODULE_big  = taskflow
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA_built  = sql/taskflow--$(EXTVERSION).sql
SHLIB_LINK  = -lcurl -lz
PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS   = -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels \
              -Wformat-security -Wno-format-truncation

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test/out --load-extension=taskflow

EXTRA_CLEAN = test/out tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/taskflow--$(EXTVERSION).sql: $(sort $(wildcard sql/src/*.sql))
	cat $^ > $@

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
