// Umbrella header of the meta-learning module (metanas::meta).
#pragma once
#include "metanas/meta/atnas.h"
#include "metanas/meta/config.h"
#include "metanas/meta/evaluator.h"
#include "metanas/meta/fomaml.h"
#include "metanas/meta/learner.h"
#include "metanas/meta/reptile.h"
#include "metanas/meta/retrain_evaluator.h"
#include "metanas/meta/task_learner.h"
