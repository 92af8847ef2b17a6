#pragma once
// The three ways the study trains the query-key pair.
#include <vector>

#include "model/config.h"
#include "train/init.h"

namespace vitqk {

struct Variant {
  const char* name;   // run folder and JSON key
  const char* label;  // for people
  Form qk;
  MergedInit init;
};

inline const std::vector<Variant>& study_variants() {
  static const std::vector<Variant> v = {{"factorized", "factorized", Form::Factorized, MergedInit::Product},
                                         {"merged-product", "merged, product init", Form::Merged, MergedInit::Product},
                                         {"merged-random", "merged, random init", Form::Merged, MergedInit::Random}};
  return v;
}

}  // namespace vitqk
