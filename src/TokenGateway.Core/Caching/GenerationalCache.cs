using System.Collections.Concurrent;

namespace TokenGateway.Core.Caching;

/// <summary>
/// A bounded concurrent cache with two generations (an approximate LRU): entries go into the current generation;
/// when its size would pass <c>generationSize</c> it becomes the previous one and the older is dropped; an entry
/// found in the previous generation is copied into the current one. At most two generations are held.
/// </summary>
/// <remarks>Size is tracked with a counter, never by <see cref="ConcurrentDictionary{TKey, TValue}.Count"/> (which takes every lock).</remarks>
internal sealed class GenerationalCache<TKey, TValue>(long generationSize, Func<TValue, long> sizeOf)
    where TKey : notnull
{
    private readonly Lock _rotateLock = new();
    private Generation _current = new();
    private Generation _previous = new();

    /// <summary>Entries across both generations (tests, diagnostics).</summary>
    public int Count => _current.Map.Count + _previous.Map.Count;

    /// <summary>Total size across both generations, in the units of <c>sizeOf</c> (tests, diagnostics).</summary>
    public long Size => Volatile.Read(ref _current.Size) + Volatile.Read(ref _previous.Size);

    public bool TryGetValue(TKey key, out TValue value)
    {
        if (_current.Map.TryGetValue(key, out value!))
        {
            return true;
        }

        if (_previous.Map.TryGetValue(key, out value!))
        {
            Add(key, value); // promote: it is still in use
            return true;
        }

        return false;
    }

    public void Add(TKey key, TValue value)
    {
        var size = sizeOf(value);
        var current = _current;
        if (Volatile.Read(ref current.Size) + size > generationSize)
        {
            lock (_rotateLock)
            {
                if (ReferenceEquals(current, _current))
                {
                    _previous = current;
                    _current = new Generation();
                }

                current = _current;
            }
        }

        if (current.Map.TryAdd(key, value))
        {
            Interlocked.Add(ref current.Size, size);
        }
    }

    public void Clear()
    {
        lock (_rotateLock)
        {
            _current = new Generation();
            _previous = new Generation();
        }
    }

    private sealed class Generation
    {
        public readonly ConcurrentDictionary<TKey, TValue> Map = new();
        public long Size;
    }
}
