// The README's code example, verbatim: compiling it into the test binary proves it still builds
// against the current API (running it would train for 10 epochs, which belongs in examples/vae).
#include <genmod/genmod.hpp>

namespace readme {
using namespace genmod;

[[maybe_unused]] void example() {
auto train_set = data::FashionMNIST::load(data::Split::train).to_dataset(data::ImageLayout::flat);
nn::Sequential encoder{nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 2 * 32)};
nn::Sequential decoder{nn::Linear(32, 512), nn::ReLU(), nn::Linear(512, 784)};
models::VAE vae{encoder, decoder, dist::Bernoulli{}};
optim::Adam opt{vae.named_parameters(), {.lr = 1e-3}};
for (int epoch = 0; epoch < 10; ++epoch)
  for (auto& batch : data::Loader{train_set, {.batch_size = 128, .shuffle = true}}) {
    Tape<float> tape;
    Var<float> loss = vae.loss(Var<float>(batch.x));  // negative ELBO, mean over the batch
    tape.backward(loss);
    opt.step();
    opt.zero_grad();
  }
io::save_image_grid("samples.png", vae.sample(64).reshape({64, 1, 28, 28}), {.columns = 8});
}

}  // namespace readme
