//! Lists the USDT probes of the files named on the command line, with usdtkit's reader.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let file = usdtkit::MappedFile::open(&path)?;
        let usdt = file.usdt()?;
        for probe in usdt.probes() {
            println!("{path} {}:{} {}", probe.provider, probe.name, probe.sites.len());
        }
        for e in usdt.errors() {
            eprintln!("{e}");
        }
    }
    Ok(())
}
