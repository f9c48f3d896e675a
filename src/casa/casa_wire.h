/*
 * casa_wire.h - private to the casa room: big-endian loads and stores.
 * Byte-wise, because a CASA message may sit at any address (spec 8).
 */
#ifndef CASA_WIRE_H
#define CASA_WIRE_H

#include <stdint.h>

uint16_t casa_get16(const uint8_t *p);
uint32_t casa_get32(const uint8_t *p);
uint64_t casa_get64(const uint8_t *p);
void casa_put16(uint8_t *p, uint16_t v);
void casa_put32(uint8_t *p, uint32_t v);
void casa_put64(uint8_t *p, uint64_t v);

#endif /* CASA_WIRE_H */
