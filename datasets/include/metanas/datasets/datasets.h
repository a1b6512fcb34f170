// Umbrella header for metanas::data: datasets, loaders, cache, sampler,
// synthetic handwriting. See docs/datasets.md.
#pragma once
#include "metanas/datasets/cache.h"
#include "metanas/datasets/dataset.h"
#include "metanas/datasets/episode.h"
#include "metanas/datasets/idx.h"
#include "metanas/datasets/image.h"
#include "metanas/datasets/loader.h"
#include "metanas/datasets/mini_imagenet.h"
#include "metanas/datasets/numpy_random.h"
#include "metanas/datasets/omniglot.h"
#include "metanas/datasets/oneshot_runs.h"
#include "metanas/datasets/splits.h"
#include "metanas/datasets/synthetic.h"
#include "metanas/datasets/triple_mnist.h"
#include "metanas/datasets/triple_mnist_generator.h"
