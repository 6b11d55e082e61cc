<?php

/**
 * Base of every exception PvekeepClient throws, so callers can catch both
 * kinds at once.
 */
abstract class PvekeepException extends \RuntimeException
{
}
