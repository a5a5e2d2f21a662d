// The flagship: a variational autoencoder trained on Fashion-MNIST with train::Trainer.
//
//   vae [--arch mlp|conv] [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N]
//       [--seed S] [--resume PATH] [--latent Z] [--lr X] [--beta B] [--iwae-k K]
//       [--posterior diagonal|planar|radial|iaf|coupling] [--flow-steps K] [--context H] [--flow-hidden W]
//       [--binarize] [--kl-warmup E] [--distributed]
//
// --arch mlp is the mlp_vae reference workload (784-512-256-(2x32) / 32-256-512-784), --arch conv
// the conv_vae one. The Trainer runs the loop: after every epoch it evaluates the test negative ELBO
// (nats per image: Bernoulli likelihood on [0,1] pixels, one z sample), appends it to
// OUT/metrics.jsonl, redraws OUT/loss.svg and saves OUT/checkpoint.npz (--resume continues from
// one, exactly: the model's noise and the evaluation's are saved too); once training ends it adds
// the importance-weighted bound with K samples (test_iwae_nll) as the final record. Then the
// program writes OUT/samples.png, OUT/reconstructions.png and OUT/interpolation.png. --data may
// name any directory of IDX files in Fashion-MNIST's format (MNIST, say).
//
// --posterior other than diagonal (the default) trains a models::FlowVAE: the encoder's diagonal
// Normal is followed by --flow-steps steps of a posterior flow, each reading a context of --context
// numbers that the encoder's last layer adds to its output (planar and radial: their parameters
// per image from it, or global with --context 0; iaf: MADE networks of --flow-hidden units,
// alternating orders; coupling: affine couplings with MLP conditioners, alternating masks).
// --binarize thresholds every pixel at 1/2 (training and test sets), the binarized data set on
// which published VAE bounds are usually reported. --kl-warmup E weighs the KL term by a factor
// rising linearly from 0 to --beta over the first E epochs (Sonderby et al. 2016), which keeps more
// latent units active; the test bounds always weigh it by 1.
//
// --distributed trains data-parallel over the ranks of an MPI job (docs/distributed.md):
//
//   mpiexec -n 2 ./build/examples/vae --distributed --threads 1
//
// --batch-size is then the global batch, split evenly across the ranks (it must divide); every rank
// trains on its slice of each batch, the gradients are averaged over the global batch, and the run
// computes what one process with the whole batch computes. Rank 0 writes every file and prints;
// every rank evaluates (the same numbers). Needs a build with MPI (the genmod::mpi target). With
// more than one thread per rank add `--bind-to none` (Open MPI binds each rank to one core), and
// `--mca coll_libnbc_iallreduce_algorithm 1` makes Open MPI 4.1's non-blocking allreduce about 2x
// faster from 1 MiB up (docs/distributed.md).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <genmod/genmod.hpp>
#ifdef GENMOD_WITH_MPI
#include <genmod/distributed/mpi_communicator.hpp>
#endif

using namespace genmod;

namespace {

/// The options beyond the shared ones of train::ExampleArgs.
struct Options {
  std::string arch = "mlp";
  std::int64_t latent = 32;
  double lr = 1e-3;
  double beta = 1.0;
  std::int64_t iwae_k = 100;
  std::uint64_t seed = 0;
  std::string posterior = "diagonal";
  std::int64_t flow_steps = 4;
  std::int64_t context = 32;
  std::int64_t flow_hidden = 256;
  bool binarize = false;
  double kl_warmup = 0;
  bool distributed = false;
};

using Net = nn::DynamicSequential<float>;
using DynVAE = models::VAE<Net, Net, dist::Bernoulli>;
using DynFlowVAE = models::FlowVAE<Net, Net, dist::Bernoulli>;

/// The reference's encoder and decoder, the encoder ending in `enc_out` numbers per image.
std::pair<Net, Net> networks(const Options& o, std::int64_t enc_out) {
  Net enc, dec;
  const std::int64_t z = o.latent;
  if (o.arch == "mlp") {
    enc = {nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, enc_out)};
    dec = {nn::Linear(z, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, 784)};
  } else {
    enc = {nn::Conv2d(1, 32, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::Conv2d(32, 64, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::Flatten(),
           nn::Linear(3136, enc_out)};
    dec = {nn::Linear(z, 3136),
           nn::ReLU(),
           nn::Reshape({64, 7, 7}),
           nn::ConvTranspose2d(64, 32, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::ConvTranspose2d(32, 1, 4, {.stride = 2, .padding = 1})};
  }
  return {std::move(enc), std::move(dec)};
}

DynVAE build_vae(const Options& o) {
  auto [enc, dec] = networks(o, 2 * o.latent);
  return DynVAE(enc, dec, dist::Bernoulli{}, {.beta = o.beta, .latent_dim = o.latent, .seed = o.seed});
}

/// The posterior flow of --posterior: K steps on codes of size Z, reading the context of --context.
flows::PosteriorFlow<float> build_flow(const Options& o) {
  flows::PosteriorFlow<float> flow(o.latent);
  const std::int64_t z = o.latent, h = o.context;
  for (std::int64_t k = 0; k < o.flow_steps; ++k) {
    const bool even = k % 2 == 0;
    if (o.posterior == "planar") {
      flow.push_back(flows::PlanarFlow<float>(z, {.context_dim = h}));
    } else if (o.posterior == "radial") {
      flow.push_back(flows::RadialFlow<float>(z, {.context_dim = h}));
    } else if (o.posterior == "iaf") {
      flow.push_back(flows::InverseAutoregressiveFlow<float>(
          z, {.hidden = o.flow_hidden,
              .context_dim = h,
              .order = even ? flows::MADEOrder::natural : flows::MADEOrder::reversed}));
    } else {
      flow.push_back(flows::ContextAffineCoupling<float>(
          flows::alternating_mask<float>(z, even ? flows::MaskParity::first : flows::MaskParity::second),
          {.hidden = o.flow_hidden, .context_dim = h}));
    }
  }
  return flow;
}

DynFlowVAE build_flow_vae(const Options& o) {
  auto [enc, dec] = networks(o, 2 * o.latent + o.context);
  return DynFlowVAE(enc, dec, build_flow(o), dist::Bernoulli{}, {.beta = o.beta, .seed = o.seed});
}

Tensor<float> as_images(const Tensor<float>& x) {
  return x.reshape({x.dim(0), 1, 28, 28});
}

/// Trains `vae` (a VAE or a FlowVAE), on one process or data-parallel on `comm`'s ranks when comm
/// is not null, evaluates it and draws its pictures; the exit code.
template <class Model>
int run(Model& vae, const Options& opt, const train::ExampleArgs& args, const data::FashionMNIST& train,
        const data::FashionMNIST& test, distributed::Communicator* comm) {
  const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  if (args.batch_size % ranks != 0)
    throw ValueError("--batch-size " + std::to_string(args.batch_size) + " (the global batch) must be a multiple of " +
                     "the " + std::to_string(ranks) + " ranks");
  const std::string out_dir = args.out;
  const auto layout = opt.arch == "mlp" ? data::ImageLayout::flat : data::ImageLayout::nchw;
  // --binarize: both sets thresholded at 1/2 (static: the same binary test set in every run).
  const Tensor<float> test_x = opt.binarize ? data::binarize(test.float_images(layout)) : test.float_images(layout);
  const data::Dataset train_set =
      opt.binarize ? data::Dataset(data::binarize(train.float_images(layout)), train.labels) : train.to_dataset(layout);
  optim::Adam adam{vae.named_parameters(), {.lr = opt.lr}};
  data::Loader loader(
      train_set,
      {.batch_size = args.batch_size / ranks, .shuffle = true, .seed = args.seed, .rank = rank, .world_size = ranks});
  Generator eval_rng(opt.seed, 0x6576616cULL);  // the evaluation's z samples, apart from training's

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["arch"] = opt.arch;
  topt.metadata["latent"] = std::to_string(opt.latent);
  topt.metadata["posterior"] = opt.posterior;
  if (opt.binarize) topt.metadata["data"] = "binarized at 0.5";
  if (opt.posterior != "diagonal") {
    topt.metadata["flow_steps"] = std::to_string(opt.flow_steps);
    topt.metadata["context"] = std::to_string(opt.context);
  }
  topt.plot_options = {.title = "VAE (" + opt.arch + ", " + opt.posterior + " posterior)",
                       .x_label = "epoch",
                       .y_label = "nats per image"};
  if (comm) topt.metadata["ranks"] = std::to_string(ranks);
  train::Trainer trainer(topt);
  // "model" and "rng" are io::save_checkpoint's names: io::load_checkpoint(path, vae) reads the file.
  trainer.add_model("model", vae, &adam).add_generator(vae.rng).add_generator(eval_rng, "eval_rng");
  // Data-parallel: rank 0's initial weights on every rank, gradients averaged over the global batch.
  std::unique_ptr<distributed::DataParallel<float>> dp;
  if (comm) trainer.set_data_parallel(*(dp = std::make_unique<distributed::DataParallel<float>>(vae, *comm)));
  trainer.set_evaluate([&] {
    const eval::ElboMeans m = eval::elbo_means(vae, test_x, eval_rng);
    return train::Metrics{{"test_loss", m.negative_elbo},
                          {"test_nelbo", m.negative_elbo},
                          {"test_reconstruction", m.reconstruction},
                          {"test_kl", m.kl}};
  });
  if (opt.iwae_k > 0)
    trainer.set_final_evaluate([&] {
      return train::Metrics{{"test_iwae_nll", eval::iwae_nll(vae, test_x, opt.iwae_k, eval_rng)},
                            {"iwae_k", static_cast<double>(opt.iwae_k)}};
    });
  if (rank == 0) {
    std::printf("VAE (%s, z = %lld, %s posterior, %lld parameters), %d threads", opt.arch.c_str(),
                static_cast<long long>(opt.latent), opt.posterior.c_str(), static_cast<long long>(vae.num_parameters()),
                get_num_threads());
    if (comm) std::printf(" x %d ranks (batch %lld per rank)", ranks, static_cast<long long>(args.batch_size / ranks));
    std::printf("\ntrain: %s\ntest: %s\n", train.description().c_str(), test.description().c_str());
    std::fflush(stdout);
  }
  // --kl-warmup E: the KL's weight rises linearly from 0 to --beta over the first E epochs (by step,
  // from the trainer's step count, so a resumed run continues the ramp).
  const double warmup_steps = opt.kl_warmup * static_cast<double>(loader.num_batches());
  const train::FitResult result = trainer.fit(
      loader,
      [&](const data::Batch& b) {
        models::ElboTerms<float> terms = vae.elbo(Var<float>(b.x), vae.rng);
        if (warmup_steps > 0)
          terms.beta = opt.beta * std::min(1.0, static_cast<double>(trainer.step() + 1) / warmup_steps);
        return terms.loss().loss;
      },
      adam);
  if (result.interrupted) {
    if (rank == 0) std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
    return 130;
  }
  if (rank != 0) return 0;  // the pictures are rank 0's (every replica holds the same model)

  // Pictures: samples, test images over their reconstructions, interpolations between test pairs.
  io::save_image_grid(out_dir + "/samples.png", as_images(vae.sample(64)), {.columns = 8});
  {
    NoGradGuard no_grad;
    const Tensor<float> originals = test_x.rows(0, 16);
    const Tensor<float> rec = vae.reconstruct(Var<float>(originals)).value();
    Tensor<float> both(Shape{32, 1, 28, 28});
    std::copy(originals.begin(), originals.end(), both.data());
    std::copy(rec.begin(), rec.end(), both.data() + 16 * 784);
    io::save_image_grid(out_dir + "/reconstructions.png", both, {.columns = 16});
    Tensor<float> rows(Shape{6 * 10, 1, 28, 28});
    for (int r = 0; r < 6; ++r) {
      const Tensor<float> line =
          vae.interpolate(test_x.rows(2 * r, 1), test_x.rows(2 * r + 1, 1), 10, models::Interpolation::spherical);
      std::copy(line.begin(), line.end(), rows.data() + r * 10 * 784);
    }
    io::save_image_grid(out_dir + "/interpolation.png", rows, {.columns = 10});
  }
  std::printf(
      "wrote %s/{metrics.jsonl, samples.png, reconstructions.png, interpolation.png, loss.svg, checkpoint.npz}\n",
      out_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("vae", "Trains a VAE on Fashion-MNIST and writes metrics, pictures and a checkpoint.",
                          {.out = "vae-out", .epochs = 10, .batch_size = 128});
  Options opt;
  args.add_option("--arch", opt.arch, "mlp (the reference's mlp_vae) or conv (its conv_vae)");
  args.add_option("--latent", opt.latent, "latent dimensions", 1);
  args.add_option("--lr", opt.lr, "Adam learning rate");
  args.add_option("--beta", opt.beta, "weight of the KL term (1: the negative ELBO)");
  args.add_option("--iwae-k", opt.iwae_k, "importance samples for the final test bound (0: skip)", 0);
  args.add_option("--posterior", opt.posterior, "diagonal (a VAE), or a flow posterior: planar, radial, iaf, coupling");
  args.add_option("--flow-steps", opt.flow_steps, "steps of the posterior flow", 1);
  args.add_option("--context", opt.context, "context numbers from the encoder for the flow (0: none)", 0);
  args.add_option("--flow-hidden", opt.flow_hidden, "hidden units of the iaf and coupling networks", 1);
  args.add_option("--kl-warmup", opt.kl_warmup, "epochs over which the KL weight rises from 0 to --beta (0: none)");
  args.add_flag("--binarize", opt.binarize, "threshold the pixels at 1/2 (binarized Fashion-MNIST)");
  args.add_flag("--distributed", opt.distributed,
                "data-parallel over the ranks of an MPI job (mpiexec -n N vae --distributed; needs MPI)");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  opt.seed = args.seed;
  if (opt.arch != "mlp" && opt.arch != "conv") throw ValueError("--arch: expected mlp or conv, got '" + opt.arch + "'");
  if (!(opt.lr > 0) || !(opt.beta >= 0) || !(opt.kl_warmup >= 0))
    throw ValueError("expected --lr > 0, --beta >= 0 and --kl-warmup >= 0");
  const std::vector<std::string> posteriors{"diagonal", "planar", "radial", "iaf", "coupling"};
  if (std::find(posteriors.begin(), posteriors.end(), opt.posterior) == posteriors.end())
    throw ValueError("--posterior: expected diagonal, planar, radial, iaf or coupling, got '" + opt.posterior + "'");
  if (opt.posterior == "coupling" && opt.latent < 2)
    throw ValueError("--posterior coupling: expected --latent >= 2 (a mask keeps half), got " +
                     std::to_string(opt.latent));
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  manual_seed(opt.seed);
  distributed::Communicator* comm = nullptr;
#ifdef GENMOD_WITH_MPI
  std::unique_ptr<distributed::MpiSession> session;
  std::unique_ptr<distributed::MpiCommunicator> mpi;
  if (opt.distributed) {
    session = std::make_unique<distributed::MpiSession>(&argc, &argv);
    comm = (mpi = std::make_unique<distributed::MpiCommunicator>()).get();
  }
  try {
#else
  if (opt.distributed)
    throw ValueError(
        "--distributed: this build has no MPI (install libopenmpi-dev and reconfigure: the example "
        "then links the genmod::mpi target)");
  {
#endif
    if (opt.posterior == "diagonal") {
      DynVAE vae = build_vae(opt);
      return run(vae, opt, args, train, test, comm);
    }
    DynFlowVAE vae = build_flow_vae(opt);
    return run(vae, opt, args, train, test, comm);
  }
#ifdef GENMOD_WITH_MPI
  catch (const std::exception& e) {
    // One rank failed: stop the whole job now rather than let the others wait for it.
    if (comm && comm->size() > 1) distributed::abort_all("vae: rank " + std::to_string(comm->rank()) + ": " + e.what());
    throw;
  }
#endif
} catch (const std::exception& e) {
  std::fprintf(stderr, "vae: %s\n", e.what());
  return 1;
}
