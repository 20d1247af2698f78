using BenchmarkDotNet.Running;

namespace TokenGateway.Benchmarks;

internal static class BenchmarkProgram
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
}
