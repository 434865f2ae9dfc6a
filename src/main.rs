fn main() -> std::process::ExitCode {
    notarium::cli::main()
}
