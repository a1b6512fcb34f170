// Umbrella header of the NAS module (metanas::nas).
#pragma once
#include "metanas/nas/builtin_genotypes.h"
#include "metanas/nas/config.h"
#include "metanas/nas/darts.h"
#include "metanas/nas/discrete_network.h"
#include "metanas/nas/genotype.h"
#include "metanas/nas/mamlpp_convnet.h"
#include "metanas/nas/model.h"
#include "metanas/nas/normalizer.h"
#include "metanas/nas/primitives.h"
#include "metanas/nas/search_network.h"
