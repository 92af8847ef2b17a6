// vitqk: a Vision Transformer engine with factorized and merged query-key attention.
#include <CLI/CLI.hpp>
#include <optional>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "dist/comm.h"
#include "dist/session.h"

int main(int argc, char** argv) {
  vitqk::choose_wait_policy(argv);
  CLI::App app{"vitqk: Vision Transformers with factorized and merged query-key attention"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vitqk 0.1");
  vitqk::cli::add_info(app);
  vitqk::cli::add_forward(app);
  vitqk::cli::add_classify(app);
  vitqk::cli::add_merge(app);
  vitqk::cli::add_unmerge(app);
  vitqk::cli::add_convert(app);
  vitqk::cli::add_train(app);
  vitqk::cli::add_eval(app);
  vitqk::cli::add_bench(app);
  vitqk::cli::add_study(app);
  vitqk::cli::refuse_non_finite(app);
  std::optional<vitqk::dist::Session> mpi;  // MPI only under mpirun; ended after any error is reported
  using vitqk::dist::report_error;
  try {
    mpi.emplace();
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return report_error(vitqk::cli::parse_error_line(app, e, argc, argv), true);
  } catch (const vitqk::Interrupted& e) {
    return vitqk::dist::report_interrupt(e.what());
  } catch (const vitqk::dist::AgreedError& e) {
    return report_error(e.what(), true);
  } catch (const std::bad_alloc&) {
    return report_error("out of memory", false);
  } catch (const std::exception& e) {
    return report_error(e.what(), false);
  }
  return 0;
}
