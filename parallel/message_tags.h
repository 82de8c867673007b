#pragma once
// Every point-to-point message kind in one place, so that two subsystems never pick the same MPI tag.
namespace tessera::parallel {

enum class MessageTag : int {
  kTest = 1,            // tests of the communicators themselves
  kHiddenStates = 10,   // activations from one pipeline stage to the next
  kSampledTokens = 11,  // sampled ids from the last stage back to the leader (the encoded StepOutputs)
  kStepOutputSizes = 13,  // the byte size of each kSampledTokens message, sent just before it
  kStatus = 12,         // errors and readiness reports towards the leader
};

constexpr int to_int(MessageTag tag) { return static_cast<int>(tag); }

}  // namespace tessera::parallel
