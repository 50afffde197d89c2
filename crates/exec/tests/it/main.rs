//! The integration tests of netport-exec: one binary, a module per area.

mod cases;
mod common;
mod fixtures;
mod peer_caffe2;
mod peer_caffe2_rnn;
mod peer_models;
mod peer_node;
mod peer_resnet;
mod peer_third_party;
