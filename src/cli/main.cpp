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
  // Under mpirun the ranks agree that every one of them parsed its command line before any
  // starts work: a rank with a bad flag (or a file missing on its host) must not leave the
  // others waiting in a collective for ever. A rank whose parse fails joins the same agree()
  // from its handler below, so the job ends everywhere with that rank's message.
  bool parsed = false;
  app.parse_complete_callback([&] {
    parsed = true;
    vitqk::dist::agree(vitqk::dist::world(), "");
  });
  auto agree_failed = [&](const std::string& why) {
    if (!parsed && mpi && vitqk::dist::world().size() > 1) vitqk::dist::agree(vitqk::dist::world(), why);
  };
  try {
    mpi.emplace();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) {  // --help, --version: printed once if every rank asked
        const std::string asked = "--help or --version on some ranks only";
        try {
          agree_failed(asked);
        } catch (const vitqk::dist::AgreedError& a) {
          if (a.what() != asked) throw;
        }
        return !mpi || vitqk::dist::world().rank() == 0 ? app.exit(e) : 0;
      }
      const std::string line = vitqk::cli::parse_error_line(app, e, argc, argv);
      agree_failed(line);
      return report_error(line, true);
    }
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
