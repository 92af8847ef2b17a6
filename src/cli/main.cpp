// vitqk: a Vision Transformer engine with factorized and merged query-key attention.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"

int main(int argc, char** argv) {
  CLI::App app{"vitqk: Vision Transformers with factorized and merged query-key attention"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vitqk 0.1");
  vitqk::cli::add_info(app);
  vitqk::cli::add_forward(app);
  vitqk::cli::add_classify(app);
  vitqk::cli::add_merge(app);
  vitqk::cli::add_unmerge(app);
  vitqk::cli::add_train(app);
  vitqk::cli::add_eval(app);
  vitqk::cli::add_bench(app);
  vitqk::cli::add_study(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const vitqk::Interrupted& e) {
    std::cerr << "vitqk: " << e.what() << "\n";
    return 130;
  } catch (const vitqk::Error& e) {
    std::cerr << "vitqk: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "vitqk: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vitqk: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
