namespace TokenGateway.Core.Tests.Infrastructure;

/// <summary>
/// Tests that must run alone: allocation measurements on the current thread (a tokenizer's pre-tokenizer regex
/// keeps one cached runner per instance, and a test using the same regex on another thread forces a fresh runner,
/// several KB, for every call made meanwhile) and tests that inspect process-wide caches.
/// </summary>
[CollectionDefinition(nameof(SerialCollection), DisableParallelization = true)]
public sealed class SerialCollection;
