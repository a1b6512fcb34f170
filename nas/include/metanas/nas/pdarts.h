// P-DARTS inside a task (docs/nas.md "P-DARTS"): dropping the weakest ops at
// the end of a search stage, per cell type, and limiting the skip
// connections of the derived normal cell.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "metanas/nas/search_network.h"

namespace metanas::nas {

// Logits changed by a drop: (offset into alphas()->values(), value before).
struct DroppedOps {
  std::vector<std::pair<int64_t, float>> entries;
};

// Each row of every alpha_<type>.<node> keeps its `keep` largest logits among
// the ops still alive (logit > kPrunedLogit / 2; ties: the lower column) and
// the others are set to kPrunedLogit, so they get weight 0 and are not
// computed. Each cell type is ranked by its own alphas.
// released: the reg-MetaNAS code instead ranks both types by the reduce
// cell's alphas and sets dropped logits to min(masked matrix) - 1e-4, where
// the masked matrix has the kept logits and 0 elsewhere.
DroppedOps pdarts_drop_ops(SearchNetwork& net, int keep, bool released = false);
// Writes the recorded values back (undo), or kPrunedLogit again (redo).
void restore_dropped(SearchNetwork& net, const DroppedOps& d);
void reapply_dropped(SearchNetwork& net, const DroppedOps& d);

// P-DARTS's final rule: while the derived normal cell (genotype()) has more
// than max_skips skip_connect ops, the one whose skip logit is lowest is set
// to min(row) - 1e-4, so that the input's next-best op is derived instead.
// Returns how many logits were lowered. Throws if the space has no skip_connect.
int limit_skip_connections(SearchNetwork& net, int max_skips);

// The released reg-MetaNAS rule (genotypes.py limit_skip_connections_alphas),
// kept for comparison. If the derived normal cell has at least max_skips
// skips, the normal rows (nodes in order, inputs within a node) are visited by
// ascending logit of the column left of skip_connect (sk_idx - 1: the off-by-one,
// read once before any change), and each visit sets the skip logit of the row
// before the visited one (its row lookup's own off-by-one; row 0 for row 0) to
// min(row) - 1e-4, until fewer than max_skips skips are derived (at most
// max_skips - 1, where the paper allows max_skips) or every row was visited.
// Returns how many logits were lowered. Throws if skip_connect is column 0.
int limit_skip_connections_released(SearchNetwork& net, int max_skips);

}  // namespace metanas::nas
