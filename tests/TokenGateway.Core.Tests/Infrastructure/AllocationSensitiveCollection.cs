namespace TokenGateway.Core.Tests.Infrastructure;

/// <summary>
/// Tests that measure allocations on the current thread. They run alone: a tokenizer's pre-tokenizer regex keeps
/// one cached runner per instance, and a test using the same regex on another thread forces a fresh runner
/// (several KB) for every call made while it holds the cached one.
/// </summary>
[CollectionDefinition(nameof(AllocationSensitiveCollection), DisableParallelization = true)]
public sealed class AllocationSensitiveCollection;
