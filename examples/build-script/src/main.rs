//! Prints the constants cpgen generated at build time.

mod cluster {
    include!(concat!(env!("OUT_DIR"), "/cpgen_cluster.rs"));
}

fn main() {
    println!("cluster={}", cluster::CLUSTER_NAME);
    println!("version={}", cluster::KUBERNETES_VERSION);
    println!("api={}", cluster::API_ENDPOINT);
    println!("etcd={}", cluster::ETCD_ENDPOINTS.join(","));
    println!("ca_first_line={}", cluster::CA_CERT_PEM.lines().next().unwrap_or_default());
}
